"""Files ``reconciler init`` copies: links to schemas/orders.yaml and examples/ (one copy of each in the repository; the wheel holds their content)."""
