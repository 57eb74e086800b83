DROP TABLE plugin_secrets;
