"""Reading the output of facts that run one command per item."""


def sections(output) -> dict[str, list[str]]:
    """The lines of a fact's output split by the ``=== <name>`` line that starts each section."""
    found, current = {}, None
    for line in output:
        if line.startswith("=== "):
            current = found.setdefault(line[4:].strip(), [])
        elif current is not None:
            current.append(line)
    return found
