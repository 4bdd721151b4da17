-- comment: 重点人员管控覆盖 / key persons by community, category and social-security status, with community home visits in the last 90 days
-- column township_code: 乡镇街道代码 / township of the key person's residence
-- column village_code: 社区村代码 / community or village of the residence
-- column village_name: 社区村 / community or village name
-- column category: 人员类别 / key-person category (tier A/B/C)
-- column social_security_status: 社保状态 / best social-security status: 正常缴费 paying, 暂停缴费 suspended, 终止参保 terminated, 未参保 not insured
-- column receives_benefits: 领取待遇 / receives benefit payments (any month)
-- column as_of: 统计截止日 / reference date (newest key-person snapshot); visits counted in the 90 days up to it
-- column n_key_persons: 重点人员数 / key persons
-- column n_visited_90d: 近90天走访人数 / key persons visited by a grid member in the last 90 days
-- column visited_90d_share: 近90天走访覆盖率 / share of key persons visited in the last 90 days
-- column n_visits_90d: 近90天走访次数 / home visits to these persons in the last 90 days
with source as (
    select * from staging.stg_police__key_persons
    where in_latest_snapshot
),
renamed as (
    select
        source.record_key,
        source.category,
        source.address_code,
        strptime(max(source.file_stamp) over (), '%Y%m%d')::date as as_of
    from source
),
persons as (
    select
        renamed.*,
        xref.person_key,
        addr.township_code,
        addr.village_code,
        addr.village_name
    from renamed
    join integrated.person_xref as xref
        on xref.feed = 'police.key_persons' and xref.record_key = renamed.record_key
    left join integrated.dim_address as addr using (address_code)
),
insurance as (
    select
        xref.person_key,
        -- 1 paying beats 2 suspended beats 3 terminated
        case min(insured.status) when '1' then '正常缴费' when '2' then '暂停缴费' else '终止参保' end
            as social_security_status
    from staging.stg_social_security__insured as insured
    join integrated.person_xref as xref
        on xref.feed = 'social_security.insured' and xref.record_key = insured.record_key
    group by xref.person_key
),
benefits as (
    select distinct xref.person_key
    from staging.stg_social_security__benefits as b
    join integrated.person_xref as xref
        on xref.feed = 'social_security.benefits' and xref.record_key = b.record_key
),
visits as (
    select persons.person_key, count(*) as visits_90d
    from staging.stg_community__visits as v
    join integrated.person_xref as xref
        on xref.feed = 'community.visits' and xref.record_key = v.record_key
    join persons on persons.person_key = xref.person_key
    where v.visited_on > persons.as_of - interval 90 day and v.visited_on <= persons.as_of
    group by persons.person_key
),
final as (
    select
        persons.township_code,
        persons.village_code,
        any_value(persons.village_name) as village_name,
        persons.category,
        coalesce(insurance.social_security_status, '未参保') as social_security_status,
        benefits.person_key is not null as receives_benefits,
        any_value(persons.as_of) as as_of,
        count(distinct persons.person_key) as n_key_persons,
        count(distinct persons.person_key) filter (where visits.visits_90d > 0) as n_visited_90d,
        n_visited_90d / n_key_persons as visited_90d_share,
        coalesce(sum(visits.visits_90d), 0)::bigint as n_visits_90d
    from persons
    left join insurance using (person_key)
    left join benefits using (person_key)
    left join visits using (person_key)
    group by all
)
select * from final
order by township_code, village_code, category, social_security_status
