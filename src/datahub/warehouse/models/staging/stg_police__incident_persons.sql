-- Staging: police.incident_persons (警情涉及人员), one row per business key (incident_no, person_seq).
-- Exact duplicates are dropped; when a key was delivered more than once
-- (several files), the latest delivery wins; two different rows for
-- the key in that delivery are flagged is_near_duplicate (the first row is kept: a later
-- near-identical row is the re-keyed copy).
with source as (
    select * from raw.police__incident_persons
),
renamed as (
    select
        incident_no::varchar || '/' || person_seq::varchar as record_key,
        incident_no,
        person_seq,
        person_role,
        name_token,
        name_pinyin_token,
        name_status,
        id_number_token,
        id_number_status,
        phone_token,
        phone_kind,
        recorded_at,
        involved_name_dob_token,
        involved_birth_year,
        involved_sex,
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
        count(distinct content_hash) over (partition by incident_no, person_seq, file_stamp) > 1 as is_near_duplicate
    from hashed
    qualify row_number() over (
        partition by incident_no, person_seq order by file_stamp desc, loaded_at desc, source_row
    ) = 1
)
select * from final
