-- Spending budgets per month (UTC), in millionths of a US dollar; NULL means no budget.
ALTER TABLE tenants ADD COLUMN budget_micro_usd_per_month BIGINT;
ALTER TABLE api_keys ADD COLUMN budget_micro_usd_per_month BIGINT;
