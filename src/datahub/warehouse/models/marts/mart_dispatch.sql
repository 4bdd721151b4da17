-- comment: 派警与"135"到场 / one-minute dispatch rate and 1-3-5 minute arrival compliance per police station, township, month, area class and season
-- column station: 管辖派出所 / handling police station
-- column township_code: 乡镇街道代码 / township code of the scene
-- column township_name: 乡镇街道 / township name
-- column month: 月份 / month of the call (YYYY-MM)
-- column area_class: 区域等级 / area class (重点部位 / 重点区域 / 一般区域)
-- column arrival_target_seconds: 到场时限(秒) / arrival target in seconds (60 / 180 / 300)
-- column season: 旅游季 / tourist season: 旺季 peak (Jul, Aug, 1-7 Oct) or 淡季 off
-- column n_incidents: 警情数 / incidents received
-- column n_dispatched: 已派警数 / incidents with a dispatch time
-- column n_dispatched_60s: 一分钟内派警数 / incidents dispatched within 60 s of the call
-- column dispatch_60s_rate: 一分钟派警率 / share dispatched within 60 s (of incidents with a dispatch time)
-- column n_arrived: 已到场数 / incidents with an arrival time
-- column n_arrived_on_target: 按时到场数 / arrivals within the area-class target after dispatch
-- column arrival_on_target_rate: "135"到场达标率 / share of arrivals within 1/3/5 minutes of dispatch
-- column avg_dispatch_seconds: 平均派警用时(秒) / mean seconds from call to dispatch
-- column avg_arrival_minutes: 平均到场用时(分) / mean minutes from dispatch to arrival
with source as (
    select * from staging.stg_police__incidents
),
renamed as (
    select
        source.station,
        addr.township_code,
        addr.township_name,
        strftime(source.received_at, '%Y-%m') as month,
        source.area_class,
        case source.area_class when '重点部位' then 60 when '重点区域' then 180 else 300 end
            as arrival_target_seconds,
        case
            when month(source.received_at) in (7, 8) then '旺季'
            when month(source.received_at) = 10 and day(source.received_at) <= 7 then '旺季'
            else '淡季'
        end as season,
        date_diff('second', source.received_at, source.dispatched_at) as dispatch_seconds,
        date_diff('second', source.dispatched_at, source.arrived_at) as arrival_seconds
    from source
    left join integrated.dim_address as addr using (address_code)
),
final as (
    select
        station,
        township_code,
        any_value(township_name) as township_name,
        month,
        area_class,
        arrival_target_seconds,
        season,
        count(*) as n_incidents,
        count(dispatch_seconds) as n_dispatched,
        count(*) filter (where dispatch_seconds <= 60) as n_dispatched_60s,
        n_dispatched_60s / nullif(n_dispatched, 0) as dispatch_60s_rate,
        count(arrival_seconds) as n_arrived,
        count(*) filter (where arrival_seconds <= arrival_target_seconds) as n_arrived_on_target,
        n_arrived_on_target / nullif(n_arrived, 0) as arrival_on_target_rate,
        avg(dispatch_seconds) as avg_dispatch_seconds,
        avg(arrival_seconds) / 60.0 as avg_arrival_minutes
    from renamed
    group by station, township_code, month, area_class, arrival_target_seconds, season
)
select * from final
order by month, station, township_code, area_class
