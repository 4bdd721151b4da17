-- Staging: community.disputes (矛盾纠纷), one row per business key (dispute_no).
-- Exact duplicates are dropped; when a key was delivered more than once
-- (several files), the latest delivery wins; two different rows for
-- the key in that delivery are flagged is_near_duplicate (the first row is kept: a later
-- near-identical row is the re-keyed copy).
with source as (
    select * from raw.community__disputes
),
renamed as (
    select
        dispute_no as record_key,
        dispute_no,
        found_on,
        address_code,
        grid_code,
        dispute_type,
        risk_level,
        status,
        resolved_on,
        member_no,
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
        count(distinct content_hash) over (partition by dispute_no, file_stamp) > 1 as is_near_duplicate
    from hashed
    qualify row_number() over (
        partition by dispute_no order by file_stamp desc, loaded_at desc, source_row
    ) = 1
)
select * from final
