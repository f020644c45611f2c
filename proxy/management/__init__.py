"""The management passthroughs (Target Admin, Experience Platform activation) and what guards them: client
keys, call budgets, IMS credentials, bulk profile uploads."""
