-- comment: 警情热点 / incidents per grid, community/village and township by hour of week, with ROLLUP totals at every division level
-- column division_level: 区划层级 / level of the row: grid, community (社区/村), township or city total
-- column township_code: 乡镇街道代码 / township code (NULL on city totals)
-- column township_name: 乡镇街道 / township name
-- column village_code: 社区村代码 / community or village code (NULL on township and city totals)
-- column village_name: 社区村 / community or village name
-- column grid_code: 网格代码 / grid code (NULL above grid level)
-- column grid_name: 网格 / grid name
-- column hour_of_week: 周内小时 / hour of week 0-167 (Monday 00:00 = 0); NULL = all hours
-- column n_incidents: 警情数 / incidents
-- column n_criminal: 刑事警情数 / incidents finally classed criminal (刑事)
-- column n_public_order: 治安警情数 / incidents finally classed public order (治安)
-- column n_disputes: 纠纷警情数 / incidents finally classed dispute (纠纷)
-- column n_traffic: 交通警情数 / incidents finally classed traffic (交通)
with source as (
    select * from staging.stg_police__incidents
),
renamed as (
    select
        addr.township_code,
        addr.township_name,
        addr.village_code,
        addr.village_name,
        addr.grid_code,
        addr.grid_name,
        (isodow(source.received_at) - 1) * 24 + hour(source.received_at) as hour_of_week,
        coalesce(source.final_category, source.call_category) as category
    from source
    join integrated.dim_address as addr using (address_code)
),
final as (
    select
        case
            when grouping(grid_code) = 0 then 'grid'
            when grouping(village_code) = 0 then 'community'
            when grouping(township_code) = 0 then 'township'
            else 'city'
        end as division_level,
        township_code,
        case when grouping(township_code) = 0 then any_value(township_name) end as township_name,
        village_code,
        case when grouping(village_code) = 0 then any_value(village_name) end as village_name,
        grid_code,
        case when grouping(grid_code) = 0 then any_value(grid_name) end as grid_name,
        hour_of_week,
        count(*) as n_incidents,
        count(*) filter (where category = '刑事') as n_criminal,
        count(*) filter (where category = '治安') as n_public_order,
        count(*) filter (where category = '纠纷') as n_disputes,
        count(*) filter (where category = '交通') as n_traffic
    from renamed
    group by rollup (township_code, village_code, grid_code), rollup (hour_of_week)
)
select * from final
order by division_level, township_code, village_code, grid_code, hour_of_week
