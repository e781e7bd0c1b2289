"""README.md's promises that can drift from the code: its configuration table is the one
`deploy/config-table` makes from `session-fcgi --help`, option for option."""
import os
import re
import subprocess
import textwrap

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


def test_the_swift_example_is_the_one_compiled_and_imports_only_products():
    """New-user review s19: README's Swift example did not build from another package, because
    SessionCrypto was not a library product. Tests/ReadmeExampleTests compiles the example's
    body; here README must show exactly that body, and import only library products."""
    with open(os.path.join(ROOT, "README.md")) as readme:
        text = readme.read()
    section = text[text.index("### Using the session API from Swift"):]
    shown = re.search(r"```swift\n(.*?)```", section, re.S).group(1)
    with open(os.path.join(ROOT, "Tests", "ReadmeExampleTests", "ReadmeExample.swift")) as f:
        compiled = f.read()
    body = re.search(r"throws \{\n(.*)\n\}\n$", compiled, re.S).group(1)
    shown_imports = [line for line in shown.splitlines() if line.startswith("import ")]
    shown_body = "\n".join(line for line in shown.splitlines() if not line.startswith("import ")).strip("\n")
    assert textwrap.dedent(body) == shown_body, "README's Swift example differs from Tests/ReadmeExampleTests/ReadmeExample.swift"
    assert shown_imports == [line for line in compiled.splitlines() if line.startswith("import ")]
    with open(os.path.join(ROOT, "Package.swift")) as f:
        manifest = f.read()
    products = set(re.findall(r'\.library\(name: "(\w+)"', manifest))
    for line in shown_imports:
        module = line.split()[1]
        assert module in products, f"README imports {module}, which another package cannot depend on (not a library product)"
