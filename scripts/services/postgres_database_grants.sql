-- Privileges inside one analyzer database: the DDL role owns the schema, the application user may
-- only read and write rows, now and in every table the DDL role creates later. Idempotent; run while
-- connected to that database, by the postgres superuser (services.sh) or the test admin (tests).
ALTER SCHEMA public OWNER TO role_ailog_analyzer_ddl;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO ailog_analyzer_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ailog_analyzer_user;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ailog_analyzer_user;
ALTER DEFAULT PRIVILEGES FOR ROLE role_ailog_analyzer_ddl IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ailog_analyzer_user;
ALTER DEFAULT PRIVILEGES FOR ROLE role_ailog_analyzer_ddl IN SCHEMA public
    GRANT USAGE ON SEQUENCES TO ailog_analyzer_user;
-- The database name is only known at run time, hence the dynamic statements.
DO $$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO ailog_analyzer_user', current_database());
END
$$;
