"""Re-encrypting stored secrets under the active key (POINTS_ENCRYPTION_KEYS rotation)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ..persistence.engine import transaction
from ..persistence.models import Practitioner, WebhookSubscription
from ..persistence.pii import PiiKeys, blob_key_id, reencrypt, seal, unseal


def rotate_encryption(sessions: sessionmaker[Session], keys: PiiKeys, *, batch: int = 1000) -> dict[str, int]:
    """One transaction per batch, so a long rotation holds no lock for long and resumes where it stopped."""
    counts = {"practitioners": 0, "webhooks": 0}
    last = 0
    while True:
        with transaction(sessions, write=True) as session:
            rows = session.scalars(
                select(Practitioner).where(Practitioner.id > last).order_by(Practitioner.id).limit(batch)
            ).all()
            for practitioner in rows:
                if blob_key_id(practitioner.national_id_cipher) != keys.active_key_id:
                    practitioner.national_id_cipher = reencrypt(
                        keys,
                        practitioner.national_id_cipher,
                        associated_data=practitioner.code.encode("utf-8"),
                    )
                    counts["practitioners"] += 1
        if not rows:
            break
        last = rows[-1].id
    with transaction(sessions, write=True) as session:
        for subscription in session.scalars(select(WebhookSubscription)):
            if blob_key_id(subscription.secret_cipher) != keys.active_key_id:
                aad = f"webhook:{subscription.id}".encode()
                subscription.secret_cipher = seal(
                    keys, unseal(keys, subscription.secret_cipher, associated_data=aad), associated_data=aad
                )
                counts["webhooks"] += 1
    return counts
