-- Division hierarchy of the current snapshot: city → township → community/village → grid,
-- each division with the codes and names of all its ancestors. Divisions the address register
-- uses but the snapshot lacks (their rows were quarantined) are added as inferred rows without a
-- name; their level and parent follow from the code (GB/T 2260 style: township 9 digits,
-- community/village 12 = township + 3, 001-199 community, 200-399 village; grid 15 = village + 3).
with recursive source as (
    select * from staging.stg_government__divisions
    where in_latest_snapshot
),
renamed as (
    select
        division_code,
        division_name,
        level as level_zh,
        case level
            when '市' then 'city'
            when '乡镇街道' then 'township'
            when '社区' then 'community'
            when '村' then 'village'
            when '网格' then 'grid'
        end as level,
        parent_code,
        false as is_inferred
    from source
),
referenced as (
    select distinct grid_code as division_code from staging.stg_government__addresses
    union
    select distinct village_code from staging.stg_government__addresses
    union
    select distinct township_code from staging.stg_government__addresses
),
inferred as (
    select
        division_code,
        null::varchar as division_name,
        case
            when length(division_code) = 9 then '乡镇街道'
            when length(division_code) = 12 and right(division_code, 3)::int < 200 then '社区'
            when length(division_code) = 12 then '村'
            when length(division_code) = 15 then '网格'
        end as level_zh,
        case
            when length(division_code) = 9 then 'township'
            when length(division_code) = 12 and right(division_code, 3)::int < 200 then 'community'
            when length(division_code) = 12 then 'village'
            when length(division_code) = 15 then 'grid'
        end as level,
        case
            when length(division_code) = 9 then left(division_code, 6)
            else left(division_code, length(division_code) - 3)
        end as parent_code,
        true as is_inferred
    from referenced
    where division_code is not null
        and length(division_code) in (9, 12, 15)
        and regexp_full_match(division_code, '[0-9]+')
        and division_code not in (select division_code from renamed)
),
all_divisions as (
    select * from renamed
    union all
    select * from inferred
),
walk as (
    select division_code, division_code as ancestor_code, 0 as depth
    from all_divisions
    union all
    select walk.division_code, parent.parent_code, walk.depth + 1
    from walk
    join all_divisions as parent on parent.division_code = walk.ancestor_code
    where parent.parent_code is not null and walk.depth < 8
),
ancestors as (
    select
        walk.division_code,
        max(case when a.level = 'city' then a.division_code end) as city_code,
        max(case when a.level = 'township' then a.division_code end) as township_code,
        max(case when a.level = 'township' then a.division_name end) as township_name,
        max(case when a.level in ('community', 'village') then a.division_code end) as village_code,
        max(case when a.level in ('community', 'village') then a.division_name end) as village_name,
        max(case when a.level in ('community', 'village') then a.level end) as village_kind,
        max(case when a.level = 'grid' then a.division_code end) as grid_code,
        max(case when a.level = 'grid' then a.division_name end) as grid_name
    from walk
    join all_divisions as a on a.division_code = walk.ancestor_code
    group by walk.division_code
),
final as (
    select
        all_divisions.division_code,
        all_divisions.division_name,
        all_divisions.level,
        all_divisions.level_zh,
        all_divisions.parent_code,
        all_divisions.is_inferred,
        ancestors.city_code,
        ancestors.township_code,
        ancestors.township_name,
        ancestors.village_code,
        ancestors.village_name,
        ancestors.village_kind,
        ancestors.grid_code,
        ancestors.grid_name
    from all_divisions
    join ancestors using (division_code)
)
select * from final
