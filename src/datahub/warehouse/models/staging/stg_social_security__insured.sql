-- Staging: social_security.insured (参保人员), one row per business key (card_no, insurance_type).
-- Exact duplicates are dropped; when a key was delivered more than once
-- (several snapshots), the latest delivery wins; two different rows for
-- the key in that delivery are flagged is_near_duplicate (the first row is kept: a later
-- near-identical row is the re-keyed copy).
with source as (
    select * from raw.social_security__insured
),
renamed as (
    select
        card_no::varchar || '/' || insurance_type::varchar as record_key,
        card_no,
        id_number_token,
        id_number_status,
        name_token,
        name_pinyin_token,
        name_status,
        phone_token,
        phone_kind,
        insurance_type,
        status,
        employer_credit_code,
        employer_name,
        first_enrolled,
        strptime(first_enrolled || '-01', '%Y-%m-%d')::date as first_enrolled_date,
        insured_name_dob_token,
        insured_birth_year,
        insured_sex,
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
        count(distinct content_hash) over (partition by card_no, insurance_type, file_stamp) > 1 as is_near_duplicate,
        file_stamp = max(file_stamp) over () as in_latest_snapshot
    from hashed
    qualify row_number() over (
        partition by card_no, insurance_type order by file_stamp desc, loaded_at desc, source_row
    ) = 1
)
select * from final
