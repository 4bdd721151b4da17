-- comment: 矛盾纠纷化解 / disputes per community or village: volume, resolution rate and time, repeat parties and parties known to the police (民转刑 risk)
-- column township_code: 乡镇街道代码 / township code
-- column township_name: 乡镇街道 / township name
-- column village_code: 社区村代码 / community or village code
-- column village_name: 社区村 / community or village name
-- column n_disputes: 纠纷数 / disputes taken in
-- column n_high_risk: 高风险纠纷数 / disputes with risk level 高
-- column n_resolved: 办结数 / disputes resolved (办结)
-- column resolution_rate: 化解率 / share of disputes resolved
-- column avg_resolution_days: 平均化解天数 / mean days from found to resolved
-- column n_parties: 当事人数 / distinct persons party to a dispute here
-- column n_repeat_parties: 多次纠纷当事人数 / parties with two or more disputes (anywhere)
-- column n_parties_in_police_incidents: 涉警当事人数 / parties who also appear in police incidents
-- column n_early_warning: 民转刑预警人数 / parties with repeated disputes who also appear in police incidents
with source as (
    select * from staging.stg_community__disputes
),
renamed as (
    select
        source.dispute_no,
        div.township_code,
        div.township_name,
        div.village_code,
        div.village_name,
        source.risk_level,
        source.status = '办结' and source.resolved_on is not null as is_resolved,
        date_diff('day', source.found_on, source.resolved_on) as resolution_days
    from source
    left join integrated.dim_division as div on div.division_code = source.grid_code
),
party_persons as (
    select distinct parties.dispute_no, xref.person_key
    from staging.stg_community__dispute_parties as parties
    join integrated.person_xref as xref
        on xref.feed = 'community.dispute_parties' and xref.record_key = parties.record_key
),
person_flags as (
    select
        person_key,
        count(distinct dispute_no) >= 2 as is_repeat,
        person_key in (
            select person_key from integrated.person_xref
            where feed in ('police.incidents', 'police.incident_persons')
        ) as in_police
    from party_persons
    group by person_key
),
parties as (
    select renamed.village_code, party_persons.person_key, person_flags.is_repeat, person_flags.in_police
    from party_persons
    join renamed using (dispute_no)
    join person_flags using (person_key)
),
party_counts as (
    select
        village_code,
        count(distinct person_key) as n_parties,
        count(distinct person_key) filter (where is_repeat) as n_repeat_parties,
        count(distinct person_key) filter (where in_police) as n_parties_in_police_incidents,
        count(distinct person_key) filter (where is_repeat and in_police) as n_early_warning
    from parties
    group by village_code
),
disputes as (
    select
        township_code,
        any_value(township_name) as township_name,
        village_code,
        any_value(village_name) as village_name,
        count(*) as n_disputes,
        count(*) filter (where risk_level = '高') as n_high_risk,
        count(*) filter (where is_resolved) as n_resolved,
        n_resolved / count(*) as resolution_rate,
        avg(resolution_days) filter (where is_resolved) as avg_resolution_days
    from renamed
    group by township_code, village_code
),
final as (
    select
        disputes.*,
        coalesce(party_counts.n_parties, 0) as n_parties,
        coalesce(party_counts.n_repeat_parties, 0) as n_repeat_parties,
        coalesce(party_counts.n_parties_in_police_incidents, 0) as n_parties_in_police_incidents,
        coalesce(party_counts.n_early_warning, 0) as n_early_warning
    from disputes
    left join party_counts using (village_code)
)
select * from final
order by township_code, village_code
