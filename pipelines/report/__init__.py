"""Balance reports per customer from the warehouse (self-contained HTML, inline SVG charts) and mart previews."""
