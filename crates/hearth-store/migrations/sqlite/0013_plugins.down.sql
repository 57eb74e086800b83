DROP TABLE plugin_subscriptions;
DROP TABLE plugin_kv;
DROP TABLE plugins;
