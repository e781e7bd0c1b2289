"""README.md's promises that can drift from the code: its configuration table is the one
`deploy/config-table` makes from `session-fcgi --help`, option for option."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_configuration_table_matches_help():
    binary = os.path.join(ROOT, ".build", "debug", "session-fcgi")
    assert os.access(binary, os.X_OK), "build first (deploy/test does): " + binary
    table = subprocess.run([os.path.join(ROOT, "deploy", "config-table"), binary],
                           capture_output=True, text=True, check=True).stdout
    assert table.count("\n") > 40, "--help lists every option: " + table[:200]
    with open(os.path.join(ROOT, "README.md")) as readme:
        text = readme.read()
    assert table in text, "README's configuration table differs from --help: run deploy/config-table"
