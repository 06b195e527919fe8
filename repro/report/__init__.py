"""What paper_tables/ holds: the Table type and its schema, tables, figures, findings, and
compare."""
