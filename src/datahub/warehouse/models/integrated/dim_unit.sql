-- Real units (一实: 单位) of the current snapshot, placed in the division hierarchy and linked
-- through tokens to their legal representative's person_key.
with source as (
    select * from staging.stg_government__units
    where in_latest_snapshot
),
renamed as (
    select
        credit_code,
        record_key,
        unit_name,
        unit_category,
        address_code,
        registered_on,
        employees
    from source
),
final as (
    select
        renamed.credit_code,
        renamed.unit_name,
        renamed.unit_category,
        renamed.address_code,
        addr.township_code,
        addr.village_code,
        addr.grid_code,
        renamed.registered_on,
        renamed.employees,
        xref.person_key as legal_rep_person_key
    from renamed
    left join integrated.dim_address as addr using (address_code)
    left join integrated.person_xref as xref
        on xref.feed = 'government.units' and xref.record_key = renamed.record_key
        and xref.role = 'legal_rep'
)
select * from final
