"""The committed documents are what the code and the policy generate today."""


from app.cli import generated_docs


def test_generated_docs_are_committed_and_fresh(app):
    with app.app_context():
        for path, text in generated_docs().items():
            assert path.exists(), f"{path.name} missing: run `flask docs write`"
            assert path.read_text() == text, f"{path.name} is stale: run `flask docs write`"
