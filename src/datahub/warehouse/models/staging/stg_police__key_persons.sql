-- Staging: police.key_persons (重点人员管控), one row per business key (kp_no).
-- Exact duplicates are dropped; when a key was delivered more than once
-- (several snapshots), the latest delivery wins; two different rows for
-- the key in that delivery are flagged is_near_duplicate (the first row is kept: a later
-- near-identical row is the re-keyed copy).
with source as (
    select * from raw.police__key_persons
),
renamed as (
    select
        kp_no as record_key,
        kp_no,
        name_token,
        name_pinyin_token,
        name_status,
        id_number_token,
        id_number_status,
        phone_token,
        phone_kind,
        category,
        control_level,
        officer_no,
        station,
        address_code,
        listed_on,
        subject_name_dob_token,
        subject_birth_year,
        subject_sex,
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
        count(distinct content_hash) over (partition by kp_no, file_stamp) > 1 as is_near_duplicate,
        file_stamp = max(file_stamp) over () as in_latest_snapshot
    from hashed
    qualify row_number() over (
        partition by kp_no order by file_stamp desc, loaded_at desc, source_row
    ) = 1
)
select * from final
