-- Real houses (一实: 房) of the current snapshot, placed in the division hierarchy and linked
-- through tokens to their owner's person_key; residents counted from the real population.
with source as (
    select * from staging.stg_government__houses
    where in_latest_snapshot
),
renamed as (
    select
        house_no,
        record_key,
        address_code,
        house_use,
        house_use = '出租' as is_rented,
        area_m2,
        rooms,
        occupants,
        rental_filing_no is not null as has_rental_filing
    from source
),
residents as (
    select address_code, count(*) as registered_residents
    from staging.stg_government__population
    where in_latest_snapshot
    group by address_code
),
final as (
    select
        renamed.house_no,
        renamed.address_code,
        addr.township_code,
        addr.village_code,
        addr.grid_code,
        renamed.house_use,
        renamed.is_rented,
        renamed.has_rental_filing,
        renamed.area_m2,
        renamed.rooms,
        renamed.occupants,
        coalesce(residents.registered_residents, 0) as registered_residents,
        xref.person_key as owner_person_key
    from renamed
    left join integrated.dim_address as addr using (address_code)
    left join residents using (address_code)
    left join integrated.person_xref as xref
        on xref.feed = 'government.houses' and xref.record_key = renamed.record_key
        and xref.role = 'owner'
)
select * from final
