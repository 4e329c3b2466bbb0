"""The README walk-through, end to end through the HTTP API."""


def test_two_violations_add_up_and_suspend_the_person(admin, inspector):
    person, hospital = admin.person()
    first = inspector.violation(
        person, hospital, behaviour_code="B2-01", decided_on="2026-04-10", occurred_on="2026-03-02"
    )
    assert first["points"] == 4 and first["score_year"] == 2026 and first["profile"] == "hebei-2025"
    assert [t["kind"] for t in first["triggered"]] == ["agency_talk"]
    second = inspector.violation(person, hospital, behaviour_code="B3-01", decided_on="2026-06-10")
    assert second["standing"]["points_total"] == 11
    assert second["triggered"] == [
        {
            "type": "sanction",
            "kind": "suspension",
            "violation_id": second["id"],
            "start": "2026-06-10",
            "end": "2026-11-10",
            "months": 5,
            "basis": "cumulative",
            "shortened_by_months": 0,
        }
    ]
    eligibility = admin.get(f"/v1/practitioners/{person}/eligibility", query={"at": "2026-07-01"})
    assert eligibility == {
        "practitioner_code": person,
        "at": "2026-07-01",
        "eligible": False,
        "status": "suspended",
        "reason": "eligibility suspended from 2026-06-10 until 2026-11-10 (docs/rules.md rules 10, 11, 15)",
        "until": "2026-11-10",
        "barred_until": None,
        "emergency_care_settles": True,
    }
    assert (
        admin.get(f"/v1/practitioners/{person}/eligibility", query={"at": "2026-11-10"})["eligible"] is True
    )
