-- Division hierarchy of the current snapshot: city → township → community/village → grid,
-- each division with the codes and names of all its ancestors.
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
        parent_code
    from source
),
walk as (
    select division_code, division_code as ancestor_code, 0 as depth
    from renamed
    union all
    select walk.division_code, parent.parent_code, walk.depth + 1
    from walk
    join renamed as parent on parent.division_code = walk.ancestor_code
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
    join renamed as a on a.division_code = walk.ancestor_code
    group by walk.division_code
),
final as (
    select
        renamed.division_code,
        renamed.division_name,
        renamed.level,
        renamed.level_zh,
        renamed.parent_code,
        ancestors.city_code,
        ancestors.township_code,
        ancestors.township_name,
        ancestors.village_code,
        ancestors.village_name,
        ancestors.village_kind,
        ancestors.grid_code,
        ancestors.grid_name
    from renamed
    join ancestors using (division_code)
)
select * from final
