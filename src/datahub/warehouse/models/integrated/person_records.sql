-- Every person mentioned by a source record, as tokens only: the input of the
-- person linkage (datahub.linkage). Phones count only when they are mobiles
-- (household landlines are shared); an address counts only when it is where
-- the person lives (residence, home visit, owner-occupied house), not a scene.
with source as (
    select
        'police.incidents' as feed,
        record_key,
        'caller' as role,
        null::varchar as event_key,
        source_file,
        source_row,
        case when caller_id_number_status in ('valid', 'valid_15') then caller_id_number_token end as id_token,
        case when caller_phone_kind = 'mobile' then caller_phone_token end as phone_token,
        caller_name_token as name_token,
        caller_name_pinyin_token as name_pinyin_token,
        caller_name_dob_token as name_dob_token,
        null::varchar as address_code,
        caller_birth_year as birth_year,
        caller_sex as sex
    from staging.stg_police__incidents
    union all
    select
        'police.incident_persons' as feed,
        record_key,
        'involved' as role,
        'police.incident_persons|' || incident_no as event_key,
        source_file,
        source_row,
        case when id_number_status in ('valid', 'valid_15') then id_number_token end as id_token,
        case when phone_kind = 'mobile' then phone_token end as phone_token,
        name_token as name_token,
        name_pinyin_token as name_pinyin_token,
        involved_name_dob_token as name_dob_token,
        null::varchar as address_code,
        involved_birth_year as birth_year,
        involved_sex as sex
    from staging.stg_police__incident_persons
    union all
    select
        'police.key_persons' as feed,
        record_key,
        'subject' as role,
        null::varchar as event_key,
        source_file,
        source_row,
        case when id_number_status in ('valid', 'valid_15') then id_number_token end as id_token,
        case when phone_kind = 'mobile' then phone_token end as phone_token,
        name_token as name_token,
        name_pinyin_token as name_pinyin_token,
        subject_name_dob_token as name_dob_token,
        address_code as address_code,
        subject_birth_year as birth_year,
        subject_sex as sex
    from staging.stg_police__key_persons
    union all
    select
        'government.population' as feed,
        record_key,
        'resident' as role,
        null::varchar as event_key,
        source_file,
        source_row,
        case when id_number_status in ('valid', 'valid_15') then id_number_token end as id_token,
        case when phone_kind = 'mobile' then phone_token end as phone_token,
        name_token as name_token,
        name_pinyin_token as name_pinyin_token,
        resident_name_dob_token as name_dob_token,
        address_code as address_code,
        resident_birth_year as birth_year,
        resident_sex as sex
    from staging.stg_government__population
    union all
    select
        'government.houses' as feed,
        record_key,
        'owner' as role,
        null::varchar as event_key,
        source_file,
        source_row,
        case when owner_id_number_status in ('valid', 'valid_15') then owner_id_number_token end as id_token,
        case when owner_phone_kind = 'mobile' then owner_phone_token end as phone_token,
        owner_name_token as name_token,
        owner_name_pinyin_token as name_pinyin_token,
        owner_name_dob_token as name_dob_token,
        case when house_use = '自住' then address_code end as address_code,
        owner_birth_year as birth_year,
        owner_sex as sex
    from staging.stg_government__houses
    union all
    select
        'government.units' as feed,
        record_key,
        'legal_rep' as role,
        null::varchar as event_key,
        source_file,
        source_row,
        case when legal_rep_id_number_status in ('valid', 'valid_15') then legal_rep_id_number_token end as id_token,
        case when legal_rep_phone_kind = 'mobile' then legal_rep_phone_token end as phone_token,
        legal_rep_name_token as name_token,
        legal_rep_name_pinyin_token as name_pinyin_token,
        legal_rep_name_dob_token as name_dob_token,
        null::varchar as address_code,
        legal_rep_birth_year as birth_year,
        legal_rep_sex as sex
    from staging.stg_government__units
    union all
    select
        'social_security.insured' as feed,
        record_key,
        'insured' as role,
        null::varchar as event_key,
        source_file,
        source_row,
        case when id_number_status in ('valid', 'valid_15') then id_number_token end as id_token,
        case when phone_kind = 'mobile' then phone_token end as phone_token,
        name_token as name_token,
        name_pinyin_token as name_pinyin_token,
        insured_name_dob_token as name_dob_token,
        null::varchar as address_code,
        insured_birth_year as birth_year,
        insured_sex as sex
    from staging.stg_social_security__insured
    union all
    select
        'social_security.benefits' as feed,
        record_key,
        'beneficiary' as role,
        null::varchar as event_key,
        source_file,
        source_row,
        case when id_number_status in ('valid', 'valid_15') then id_number_token end as id_token,
        null::varchar as phone_token,
        name_token as name_token,
        name_pinyin_token as name_pinyin_token,
        beneficiary_name_dob_token as name_dob_token,
        null::varchar as address_code,
        beneficiary_birth_year as birth_year,
        beneficiary_sex as sex
    from staging.stg_social_security__benefits
    union all
    select
        'community.grid_members' as feed,
        record_key,
        'member' as role,
        null::varchar as event_key,
        source_file,
        source_row,
        null::varchar as id_token,
        case when phone_kind = 'mobile' then phone_token end as phone_token,
        name_token as name_token,
        name_pinyin_token as name_pinyin_token,
        null::varchar as name_dob_token,
        null::varchar as address_code,
        null::integer as birth_year,
        null::varchar as sex
    from staging.stg_community__grid_members
    union all
    select
        'community.dispute_parties' as feed,
        record_key,
        'party' as role,
        'community.dispute_parties|' || dispute_no as event_key,
        source_file,
        source_row,
        case when id_number_status in ('valid', 'valid_15') then id_number_token end as id_token,
        case when phone_kind = 'mobile' then phone_token end as phone_token,
        name_token as name_token,
        name_pinyin_token as name_pinyin_token,
        party_name_dob_token as name_dob_token,
        null::varchar as address_code,
        party_birth_year as birth_year,
        party_sex as sex
    from staging.stg_community__dispute_parties
    union all
    select
        'community.visits' as feed,
        record_key,
        'visited' as role,
        null::varchar as event_key,
        source_file,
        source_row,
        case when id_number_status in ('valid', 'valid_15') then id_number_token end as id_token,
        case when phone_kind = 'mobile' then phone_token end as phone_token,
        name_token as name_token,
        name_pinyin_token as name_pinyin_token,
        visited_name_dob_token as name_dob_token,
        address_code as address_code,
        visited_birth_year as birth_year,
        visited_sex as sex
    from staging.stg_community__visits
    union all
    select
        'community.patrol_teams' as feed,
        record_key,
        'leader' as role,
        null::varchar as event_key,
        source_file,
        source_row,
        null::varchar as id_token,
        case when leader_phone_kind = 'mobile' then leader_phone_token end as phone_token,
        leader_name_token as name_token,
        leader_name_pinyin_token as name_pinyin_token,
        null::varchar as name_dob_token,
        null::varchar as address_code,
        null::integer as birth_year,
        null::varchar as sex
    from staging.stg_community__patrol_teams
),
renamed as (
    select
        feed || '|' || record_key || '|' || role as unique_id,
        source.* exclude (address_code),
        addr.address_code,
        addr.village_code
    from source
    left join integrated.dim_address as addr on addr.address_code = source.address_code
),
final as (
    -- a record naming nobody (anonymous caller, blank party) mentions no person
    select * from renamed
    where coalesce(id_token, phone_token, name_token) is not null
)
-- stored in unique_id order: the linkage numbers records by rowid, so every build of the
-- same records numbers them alike (EM sampling, tie-breaks and clusters then agree)
select * from final
order by unique_id
