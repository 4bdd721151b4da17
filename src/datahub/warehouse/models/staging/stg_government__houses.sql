-- Staging: government.houses (实有房屋), one row per business key (house_no).
-- Exact duplicates are dropped; when a key was delivered more than once
-- (several snapshots), the latest delivery wins; two different rows for
-- the key in that delivery are flagged is_near_duplicate (the first row is kept: a later
-- near-identical row is the re-keyed copy).
with source as (
    select * from raw.government__houses
),
renamed as (
    select
        house_no as record_key,
        house_no,
        address_code,
        house_use,
        area_m2,
        rooms,
        occupants,
        owner_name_token,
        owner_name_pinyin_token,
        owner_name_status,
        owner_id_number_token,
        owner_id_number_status,
        owner_phone_token,
        owner_phone_kind,
        rental_filing_no,
        owner_name_dob_token,
        owner_birth_year,
        owner_sex,
        _batch_id as batch_id,
        _source_file as source_file,
        _row_number as source_row,
        _loaded_at as loaded_at,
        regexp_extract(_source_file, '_(\d{6,8})\.csv$', 1) as file_stamp
    from source
),
hashed as (
    select
        *,
        hash(*columns(* exclude (batch_id, source_file, source_row, loaded_at, file_stamp))) as content_hash
    from renamed
),
final as (
    select
        * exclude (content_hash),
        -- distinct contents of the key in its latest delivery (exact copies count once)
        count(distinct content_hash) over (partition by house_no, file_stamp) > 1 as is_near_duplicate,
        file_stamp = max(file_stamp) over () as in_latest_snapshot
    from hashed
    qualify row_number() over (
        partition by house_no order by file_stamp desc, loaded_at desc, source_row
    ) = 1
)
select * from final
