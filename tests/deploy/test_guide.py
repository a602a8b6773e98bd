"""deploy/README.md, the operator guide."""

from __future__ import annotations

from tests.deploy.kit import DEPLOY, ROOT


def test_deploy_readme_covers_every_artefact() -> None:
    """deploy/README.md names each file of the kit, so none is left unexplained."""
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file() and path.name not in {"README.md", ".gitignore"}:
            assert path.name in readme, f"{path.relative_to(ROOT)} is not in deploy/README.md"
