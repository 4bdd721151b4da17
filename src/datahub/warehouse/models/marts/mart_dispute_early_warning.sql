-- comment: 民转刑预警名单 / persons (person_key only) with repeated disputes who also appear in police incidents
-- column person_key: 人员键 / pseudonymous person key (integrated.person_index)
-- column township_code: 乡镇街道代码 / township of the latest dispute
-- column village_code: 社区村代码 / community or village of the latest dispute
-- column grid_code: 网格代码 / grid of the latest dispute
-- column dispute_count: 纠纷次数 / disputes the person was party to
-- column high_risk_disputes: 高风险纠纷次数 / of which with risk level 高
-- column unresolved_disputes: 未办结纠纷次数 / of which not resolved
-- column first_dispute_on: 首次纠纷日期 / date the first dispute was found
-- column last_dispute_on: 最近纠纷日期 / date the latest dispute was found
-- column last_dispute_type: 最近纠纷类型 / type of the latest dispute
-- column police_incident_count: 涉警次数 / police incidents naming the person (caller or involved)
-- column last_incident_at: 最近涉警时间 / time of the latest such incident
-- column incident_after_dispute: 纠纷后涉警 / a police incident on or after the first dispute
with source as (
    select * from staging.stg_community__dispute_parties
),
renamed as (
    select
        xref.person_key,
        disputes.dispute_no,
        disputes.found_on,
        disputes.dispute_type,
        disputes.risk_level,
        disputes.status = '办结' as is_resolved,
        disputes.grid_code
    from source
    join integrated.person_xref as xref
        on xref.feed = 'community.dispute_parties' and xref.record_key = source.record_key
    join staging.stg_community__disputes as disputes using (dispute_no)
),
by_person as (
    select
        person_key,
        -- two disputes found the same day: the later-registered one (higher dispute_no) is the latest
        first(grid_code order by found_on desc, dispute_no desc) as grid_code,
        count(distinct dispute_no) as dispute_count,
        count(distinct dispute_no) filter (where risk_level = '高') as high_risk_disputes,
        count(distinct dispute_no) filter (where not is_resolved) as unresolved_disputes,
        min(found_on) as first_dispute_on,
        max(found_on) as last_dispute_on,
        first(dispute_type order by found_on desc, dispute_no desc) as last_dispute_type
    from renamed
    group by person_key
    having count(distinct dispute_no) >= 2
),
incidents as (
    select xref.person_key, i.incident_no, i.received_at
    from integrated.person_xref as xref
    join staging.stg_police__incidents as i
        on xref.feed = 'police.incidents' and xref.record_key = i.record_key
    union
    select xref.person_key, p.incident_no, i.received_at
    from integrated.person_xref as xref
    join staging.stg_police__incident_persons as p
        on xref.feed = 'police.incident_persons' and xref.record_key = p.record_key
    join staging.stg_police__incidents as i on i.incident_no = p.incident_no
),
final as (
    select
        by_person.person_key,
        div.township_code,
        div.village_code,
        by_person.grid_code,
        by_person.dispute_count,
        by_person.high_risk_disputes,
        by_person.unresolved_disputes,
        by_person.first_dispute_on,
        by_person.last_dispute_on,
        by_person.last_dispute_type,
        count(distinct incidents.incident_no) as police_incident_count,
        max(incidents.received_at) as last_incident_at,
        bool_or(incidents.received_at >= by_person.first_dispute_on) as incident_after_dispute
    from by_person
    join incidents using (person_key)
    left join integrated.dim_division as div on div.division_code = by_person.grid_code
    group by all
)
select * from final
order by police_incident_count desc, dispute_count desc, person_key
