-- I5: public holidays (Vietnam's dates, 'YYYY-MM-DD'), set per year by SetHolidays; an
-- unlock request is due by the end of the next working day, and working days skip
-- Saturdays, Sundays and these dates.
CREATE TABLE holidays (
    day TEXT PRIMARY KEY,
    CHECK (length(day) = 10)
);

-- The event log is append-only at the database level: UPDATE and DELETE on events are
-- refused by triggers, whoever connects. The trigger syntax differs between the two
-- backends, so this part comes in one section per backend (storage.rs keeps the lines of
-- the backend in use; lines outside any section are for both).
-- backend: sqlite
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: UPDATE on events is refused');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: DELETE on events is refused');
END;
-- backend: postgres
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % on events is refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER events_no_update_or_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
-- backend: all
