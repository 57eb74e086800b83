ALTER TABLE api_keys DROP COLUMN budget_micro_usd_per_month;
ALTER TABLE tenants DROP COLUMN budget_micro_usd_per_month;
