"""National ID masks show the first and the last character only (`1****************X`).

The stored mask kept 4 + 4 characters, which with the check digit narrowed a number down to a few
thousand candidates. The new mask is derived from the old one, so no key is needed; the downgrade
cannot bring the hidden characters back and leaves the shorter mask in place.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE practitioner SET national_id_masked = "
            "substr(national_id_masked, 1, 1) || '****************' || substr(national_id_masked, 18, 1) "
            "WHERE length(national_id_masked) = 18"
        )
    )


def downgrade() -> None:
    # the characters the new mask hides are not stored anywhere in clear: nothing to restore
    pass
