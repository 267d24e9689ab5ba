"""What ruff cannot check of the house style: no conditional expression inside a comprehension
(a named function or a loop says what the choice means)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def test_no_conditional_expression_inside_a_comprehension():
    found = []
    for folder in ("dlrepro", "tests", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, COMPREHENSIONS) and any(
                        isinstance(inner, ast.IfExp) for inner in ast.walk(node)):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []
