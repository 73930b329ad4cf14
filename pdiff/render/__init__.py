"""Results → Rich renderables, plain lines, JSON and CSV; one module per command family.

No math here, and nothing is printed: renderers return strings, lines or renderables and the CLI prints them.
JSON field names are a public contract (documented in the README): add fields, never rename them.
"""

FORMATS = ("auto", "table", "plain", "json", "jsonl", "csv")
