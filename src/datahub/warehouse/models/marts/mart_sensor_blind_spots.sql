-- comment: 感知盲区 / grids ranked by incidents against video, face and vehicle sensor coverage
-- column township_code: 乡镇街道代码 / township code
-- column township_name: 乡镇街道 / township name
-- column village_code: 社区村代码 / community or village code
-- column village_name: 社区村 / community or village name
-- column grid_code: 网格代码 / grid code
-- column grid_name: 网格 / grid name
-- column n_incidents: 警情数 / incidents in the grid
-- column n_video: 在用视频监控数 / video cameras in service
-- column n_face: 在用人脸识别数 / face-recognition cameras in service
-- column n_vehicle: 在用车辆卡口数 / vehicle checkpoints in service
-- column n_sensors_out_of_service: 故障停用设备数 / sensors broken or retired
-- column incidents_per_sensor: 每设备警情数 / incidents per sensor in service (incidents when none)
-- column blind_spot_rank: 盲区排名 / rank, 1 = most incidents per sensor in service
with source as (
    select * from integrated.dim_division
    where level = 'grid'
),
renamed as (
    select
        township_code,
        township_name,
        village_code,
        village_name,
        division_code as grid_code,
        division_name as grid_name
    from source
),
incidents as (
    select addr.grid_code, count(*) as n_incidents
    from staging.stg_police__incidents as i
    join integrated.dim_address as addr using (address_code)
    group by addr.grid_code
),
sensors as (
    select
        grid_code,
        count(*) filter (where status = '在用' and sensor_type = '视频监控') as n_video,
        count(*) filter (where status = '在用' and sensor_type = '人脸识别') as n_face,
        count(*) filter (where status = '在用' and sensor_type = '车辆卡口') as n_vehicle,
        count(*) filter (where status <> '在用') as n_sensors_out_of_service
    from staging.stg_police__sensors
    where in_latest_snapshot
    group by grid_code
),
final as (
    select
        renamed.*,
        coalesce(incidents.n_incidents, 0) as n_incidents,
        coalesce(sensors.n_video, 0) as n_video,
        coalesce(sensors.n_face, 0) as n_face,
        coalesce(sensors.n_vehicle, 0) as n_vehicle,
        coalesce(sensors.n_sensors_out_of_service, 0) as n_sensors_out_of_service,
        coalesce(incidents.n_incidents, 0)
            / greatest(coalesce(sensors.n_video + sensors.n_face + sensors.n_vehicle, 0), 1)
            as incidents_per_sensor,
        rank() over (order by incidents_per_sensor desc, n_incidents desc) as blind_spot_rank
    from renamed
    left join incidents using (grid_code)
    left join sensors using (grid_code)
)
select * from final
order by blind_spot_rank, grid_code
