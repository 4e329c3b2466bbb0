"""Named payload schemas: <Thing>Create / <Thing>Read / <Thing>Query, one module per resource."""
