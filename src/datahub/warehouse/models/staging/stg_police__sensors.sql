-- Staging: police.sensors (前端感知设备), one row per business key (sensor_id).
-- Exact duplicates are dropped; when a key was delivered more than once
-- (several snapshots), the latest delivery wins; two different rows for
-- the key in that delivery are flagged is_near_duplicate (the first row is kept: a later
-- near-identical row is the re-keyed copy).
with source as (
    select * from raw.police__sensors
),
renamed as (
    select
        sensor_id as record_key,
        sensor_id,
        sensor_type,
        address_code,
        grid_code,
        longitude,
        latitude,
        installed_on,
        status,
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
        count(distinct content_hash) over (partition by sensor_id, file_stamp) > 1 as is_near_duplicate,
        file_stamp = max(file_stamp) over () as in_latest_snapshot
    from hashed
    qualify row_number() over (
        partition by sensor_id order by file_stamp desc, loaded_at desc, source_row
    ) = 1
)
select * from final
