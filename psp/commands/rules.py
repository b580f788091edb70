"""`psp classify`, `psp rules check|eval` and `psp reclassify`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from classify.evaluate import evaluate, read_labels
from classify.reclassify import reclassify_pending
from classify.rules import load_rules
from classify.service import Classifier, load_world, thread_category
from ingest.attribution import attribute
from ingest.errors import IngestError
from ingest.noise import noise_reason
from ingest.parsing import parse_message
from ledger.models import Category
from ledger.tables import text_table
from psp.commands.common import context, print_json
from psp.config import Rules

rules_app = typer.Typer(
    help="The classification rules: check a rules file, measure it on labelled mail.", no_args_is_help=True
)
RulesFile = Annotated[
    Path | None, typer.Option("--file", help="Rules file (default: [rules].file or the built-in rules).")
]


def _classifier(ctx: typer.Context, rules_file: Path | None) -> Classifier:
    settings = context(ctx).settings
    if rules_file is not None:
        settings = replace(settings, rules=Rules(file=str(rules_file), auto_approve=settings.rules.auto_approve))
    return Classifier.from_settings(settings)


def classify_command(
    ctx: typer.Context,
    message: Annotated[Path, typer.Argument(help="An .eml file.")],
    rules_file: RulesFile = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Dry run: how the rules would classify a message, against the current database."""
    app = context(ctx)
    try:
        raw = message.read_bytes()
    except OSError as exc:
        raise IngestError(f"cannot read {message}: {exc.strerror}") from exc
    parsed = parse_message(raw)
    classifier = _classifier(ctx, rules_file)
    with app.transaction() as session:
        world = load_world(session, app.settings)
        inherited = thread_category(session, parsed)
    who = attribute(parsed.sender, parsed.auth_results, world.directory)
    decision = classifier.mail(parsed, who, world, noise=noise_reason(parsed), thread_category=inherited)
    if as_json:
        print_json(
            {
                "category": decision.category.value,
                "minutes": decision.minutes,
                "rule": decision.rule,
                "explanation": decision.explanation,
                "contact_minutes": decision.contact_minutes,
                "project": decision.project_id,
                "sender": who.kind.value,
                "client": who.client_id,
            }
        )
    else:
        typer.echo(f"{decision.category.value}, {decision.minutes} min — {decision.explanation}")


@rules_app.command("check")
def rules_check(ctx: typer.Context, rules_file: RulesFile = None) -> None:
    """Load and check a rules file; a mistake is reported with its file and line."""
    settings = context(ctx).settings
    path = rules_file or (Path(settings.rules.file) if settings.rules.file else None)
    rules = load_rules(path)
    typer.echo(f"{rules.source}: {len(rules.rules)} rules OK")
    for rule in rules.rules:
        if rule.auto_approve and rule.name not in settings.rules.auto_approve:
            typer.echo(
                f"note: rule {rule.name!r} asks for auto-approve, which is off until an admin lists it "
                "in [rules].auto_approve",
                err=True,
            )


@rules_app.command("eval")
def rules_eval(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="Folder of labelled .eml files.")],
    labels: Annotated[Path, typer.Option("--labels", help="TSV with file and category columns.")],
    rules_file: RulesFile = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Accuracy of the rules on labelled mail, the confusion matrix and the misclassified files."""
    app = context(ctx)
    classifier = _classifier(ctx, rules_file)
    with app.transaction() as session:
        world = load_world(session, app.settings)
    result = evaluate(folder, read_labels(labels), classifier, world)
    wrong = result.misclassified()
    if as_json:
        print_json(
            {
                "accuracy": round(result.accuracy, 4),
                "correct": result.correct,
                "total": len(result.outcomes),
                "confusion": [
                    {"expected": e, "predicted": p, "count": n} for (e, p), n in sorted(result.confusion().items())
                ],
                "misclassified": [
                    {
                        "file": o.file,
                        "expected": o.expected,
                        "predicted": o.decision.category.value,
                        "explanation": o.decision.explanation,
                    }
                    for o in wrong
                ],
            }
        )
        return
    typer.echo(f"accuracy {result.accuracy:.1%} ({result.correct} of {len(result.outcomes)})\n")
    names = [c.value for c in Category]
    matrix = result.confusion()
    typer.echo(
        text_table(
            ["expected \\ predicted", *names],
            [(e, *(matrix.get((e, p), 0) for p in names)) for e in names],
            numeric=set(range(1, len(names) + 1)),
        )
    )
    if wrong:
        typer.echo("\nmisclassified:")
        for o in wrong:
            typer.echo(f"  {o.file}: {o.expected} → {o.decision.category.value} ({o.decision.explanation})")


def reclassify(ctx: typer.Context, rules_file: RulesFile = None) -> None:
    """Apply the current rules to pending mail proposals (decided ones are never touched)."""
    app = context(ctx)
    classifier = _classifier(ctx, rules_file)
    with app.transaction() as session:
        changes = reclassify_pending(session, app.settings, classifier)
    for change in changes:
        typer.echo(f"proposal {change.proposal_id}: {change.before} → {change.after}")
    typer.echo(f"{len(changes)} proposal(s) changed")


def register(app: typer.Typer) -> None:
    app.command("classify")(classify_command)
    app.add_typer(rules_app, name="rules")
    app.command("reclassify")(reclassify)
