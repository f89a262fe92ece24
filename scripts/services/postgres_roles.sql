-- The analyzer's roles and database, as production has them: a DDL role that owns the schema, a DDL
-- user acting as that role, and an application user limited to DML. Idempotent; run by psql as the
-- postgres superuser with the variables ddl_password, app_password and admin_password.
\set ON_ERROR_STOP on

SELECT 'CREATE ROLE role_ailog_analyzer_ddl NOLOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'role_ailog_analyzer_ddl') \gexec
SELECT 'CREATE ROLE ailog_analyzer_ddl_user'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ailog_analyzer_ddl_user') \gexec
SELECT 'CREATE ROLE ailog_analyzer_user'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ailog_analyzer_user') \gexec
SELECT 'CREATE ROLE ailog_analyzer_test_admin'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ailog_analyzer_test_admin') \gexec

ALTER ROLE ailog_analyzer_ddl_user LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'ddl_password';
ALTER ROLE ailog_analyzer_user LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
GRANT role_ailog_analyzer_ddl TO ailog_analyzer_ddl_user;
-- Every session of the DDL user acts as the role, so the tables it creates belong to the role and
-- the role's default privileges give the application user access to them.
ALTER ROLE ailog_analyzer_ddl_user SET role = 'role_ailog_analyzer_ddl';

-- Tests only: creates and drops one fresh database per test, owned by the DDL role, without being a
-- superuser. pg_signal_backend lets it drop a database that a test left connections open to.
ALTER ROLE ailog_analyzer_test_admin LOGIN NOSUPERUSER CREATEDB NOCREATEROLE PASSWORD :'admin_password';
GRANT role_ailog_analyzer_ddl TO ailog_analyzer_test_admin;
GRANT pg_signal_backend TO ailog_analyzer_test_admin;

SELECT 'CREATE DATABASE ailog_analyzer OWNER role_ailog_analyzer_ddl'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ailog_analyzer') \gexec
ALTER DATABASE ailog_analyzer OWNER TO role_ailog_analyzer_ddl;
