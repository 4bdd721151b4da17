-- Staging: police.incidents (110接处警记录), one row per business key (incident_no).
-- Exact duplicates are dropped; when a key was delivered more than once
-- (several files), the latest delivery wins; two different rows for
-- the key in that delivery are flagged is_near_duplicate (the first row is kept: a later
-- near-identical row is the re-keyed copy).
with source as (
    select * from raw.police__incidents
),
renamed as (
    select
        incident_no as record_key,
        incident_no,
        received_at,
        dispatched_at,
        arrived_at,
        closed_at,
        report_channel,
        call_category,
        final_category,
        incident_level,
        address_code,
        area_class,
        station,
        caller_name_token,
        caller_name_pinyin_token,
        caller_name_status,
        caller_id_number_token,
        caller_id_number_status,
        caller_phone_token,
        caller_phone_kind,
        caller_name_dob_token,
        caller_birth_year,
        caller_sex,
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
        count(distinct content_hash) over (partition by incident_no, file_stamp) > 1 as is_near_duplicate
    from hashed
    qualify row_number() over (
        partition by incident_no order by file_stamp desc, loaded_at desc, source_row
    ) = 1
)
select * from final
