-- Standard addresses (一标) with every level of the division hierarchy. The address text
-- is not carried: addresses travel as standard-address codes only.
with source as (
    select * from staging.stg_government__addresses
),
renamed as (
    select
        address_code,
        address_level,
        township_code as declared_township_code,
        village_code as declared_village_code,
        grid_code,
        station,
        longitude,
        latitude,
        is_in_use,
        in_latest_snapshot
    from source
),
final as (
    select
        renamed.address_code,
        renamed.address_level,
        grid.city_code,
        coalesce(grid.township_code, renamed.declared_township_code) as township_code,
        grid.township_name,
        coalesce(grid.village_code, renamed.declared_village_code) as village_code,
        grid.village_name,
        grid.village_kind,
        renamed.grid_code,
        grid.grid_name,
        renamed.station,
        renamed.longitude,
        renamed.latitude,
        renamed.is_in_use,
        renamed.in_latest_snapshot,
        -- the address's own codes must agree with the grid's place in the hierarchy
        grid.division_code is not null
            and grid.township_code = renamed.declared_township_code
            and grid.village_code = renamed.declared_village_code as hierarchy_consistent
    from renamed
    left join integrated.dim_division as grid
        on grid.division_code = renamed.grid_code and grid.level = 'grid'
)
select * from final
