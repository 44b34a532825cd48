"""The ``millwright`` command: composes the typer groups each component owns.

Groups are imported lazily so ``millwright node ...`` never loads the hub or torch.
"""

from __future__ import annotations

import importlib
import sys

import typer

from federation.offline import disable_telemetry

# component name -> (module, attribute, help)
GROUPS: dict[str, tuple[str, str, str]] = {
    "hub": ("hub.cli", "app", "Run and administer the central hub (registry, tokens, database)."),
    "node": ("plant_node.cli", "app", "Run a plant node (serving, sync, monitoring)."),
    "baselines": (
        "federation.baselines_cli",
        "app",
        "Train, evaluate, export and publish baseline models.",
    ),
    "federation": ("federation.cli", "app", "Federated campaigns, certificates and evaluation."),
    "demo": ("federation.demo", "app", "Run the end-to-end demo on embedded defaults."),
}


def _build_app(argv: list[str]) -> typer.Typer:
    app = typer.Typer(
        name="millwright",
        help="Millwright: MLOps for manufacturers that run many plants.",
        no_args_is_help=True,
        add_completion=False,
    )

    @app.callback()
    def _root() -> None:
        """Millwright: MLOps for manufacturers that run many plants."""

    @app.command()
    def version() -> None:
        """Print the installed Millwright version."""
        from importlib.metadata import version as _v

        typer.echo(f"millwright {_v('millwright')}")

    wanted = argv[0] if argv else None
    for name, (module, attr, help_text) in GROUPS.items():
        if wanted in GROUPS and wanted != name:
            # Register a placeholder so --help lists every group without importing it.
            app.add_typer(typer.Typer(help=help_text), name=name, help=help_text)
            continue
        try:
            group = getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(module.split(".")[0]) and wanted != name:
                continue  # component not built yet
            raise
        app.add_typer(group, name=name, help=help_text)
    return app


def main() -> None:
    """Entry point of the ``millwright`` console script."""
    disable_telemetry()
    _build_app(sys.argv[1:])()


if __name__ == "__main__":
    main()
