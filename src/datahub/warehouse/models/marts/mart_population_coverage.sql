-- comment: 一标三实完整性 / standard addresses with known population, houses and units, and residents found in several departments versus only one, with ROLLUP totals
-- column division_level: 区划层级 / level of the row: grid, community (社区/村), township or city total
-- column township_code: 乡镇街道代码 / township code (NULL on the city total)
-- column village_code: 社区村代码 / community or village code (NULL above)
-- column grid_code: 网格代码 / grid code (NULL above grid level)
-- column n_addresses: 在用标准地址数 / standard addresses in use
-- column n_addresses_with_population: 有实有人口地址数 / addresses with at least one resident
-- column n_addresses_with_house: 有实有房屋地址数 / addresses with a registered house
-- column n_addresses_with_unit: 有实有单位地址数 / addresses with a registered unit
-- column population_share: 人口覆盖率 / share of addresses with known population
-- column house_share: 房屋覆盖率 / share of addresses with a registered house
-- column unit_share: 单位覆盖率 / share of addresses with a registered unit
-- column n_residents: 实有人口数 / residents (persons) in the real-population register
-- column n_residents_multi_department: 多部门人口数 / residents also found in another department
-- column n_residents_single_department: 单部门人口数 / residents found only in the population register
-- column multi_department_share: 多部门覆盖率 / share of residents found in several departments
with source as (
    select * from integrated.dim_address
    where is_in_use and in_latest_snapshot
),
renamed as (
    select address_code, township_code, village_code, grid_code
    from source
),
population as (
    select distinct pop.address_code, xref.person_key, idx.n_departments
    from staging.stg_government__population as pop
    join integrated.person_xref as xref
        on xref.feed = 'government.population' and xref.record_key = pop.record_key
    join integrated.person_index as idx using (person_key)
    where pop.in_latest_snapshot
),
houses as (
    select distinct address_code from integrated.dim_house
),
units as (
    select distinct address_code from integrated.dim_unit
),
per_address as (
    select
        renamed.*,
        exists (select 1 from population as p where p.address_code = renamed.address_code) as has_population,
        renamed.address_code in (select address_code from houses) as has_house,
        renamed.address_code in (select address_code from units) as has_unit
    from renamed
),
addresses as (
    select
        township_code,
        village_code,
        grid_code,
        grouping(township_code, village_code, grid_code) as level_bits,
        count(*) as n_addresses,
        count(*) filter (where has_population) as n_addresses_with_population,
        count(*) filter (where has_house) as n_addresses_with_house,
        count(*) filter (where has_unit) as n_addresses_with_unit
    from per_address
    group by rollup (township_code, village_code, grid_code)
),
residents as (
    select
        a.township_code,
        a.village_code,
        a.grid_code,
        grouping(a.township_code, a.village_code, a.grid_code) as level_bits,
        count(distinct p.person_key) as n_residents,
        count(distinct p.person_key) filter (where p.n_departments > 1) as n_residents_multi_department
    from population as p
    join renamed as a using (address_code)
    group by rollup (a.township_code, a.village_code, a.grid_code)
),
final as (
    select
        case addresses.level_bits
            when 0 then 'grid' when 1 then 'community' when 3 then 'township' else 'city'
        end as division_level,
        addresses.township_code,
        addresses.village_code,
        addresses.grid_code,
        addresses.n_addresses,
        addresses.n_addresses_with_population,
        addresses.n_addresses_with_house,
        addresses.n_addresses_with_unit,
        addresses.n_addresses_with_population / addresses.n_addresses as population_share,
        addresses.n_addresses_with_house / addresses.n_addresses as house_share,
        addresses.n_addresses_with_unit / addresses.n_addresses as unit_share,
        coalesce(residents.n_residents, 0) as n_residents,
        coalesce(residents.n_residents_multi_department, 0) as n_residents_multi_department,
        coalesce(residents.n_residents, 0) - coalesce(residents.n_residents_multi_department, 0)
            as n_residents_single_department,
        residents.n_residents_multi_department / nullif(residents.n_residents, 0)
            as multi_department_share
    from addresses
    left join residents
        on addresses.level_bits = residents.level_bits
        and addresses.township_code is not distinct from residents.township_code
        and addresses.village_code is not distinct from residents.village_code
        and addresses.grid_code is not distinct from residents.grid_code
)
select * from final
order by division_level, township_code, village_code, grid_code
