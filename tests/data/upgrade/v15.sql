--
-- PostgreSQL database dump
--

\restrict PAFsb1NrRjUadjRCTC1Y1Thjj1H7LR1FWYa6TrUJoal7GcGLFvEvx1a0PkPoCki

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: unaccent; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA public;


--
-- Name: item_history_keep(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.item_history_keep() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        IF OLD.body <> NEW.body AND OLD.kind IN ('note', 'social') THEN
            INSERT INTO item_history (item_id, version, body, html, written_at, replaced_at)
            VALUES (OLD.id, OLD.version, OLD.body, OLD.html, OLD.updated_at, NEW.updated_at)
            ON CONFLICT DO NOTHING;
        END IF;
        RETURN NEW;
    END $$;


--
-- Name: liveblog_search_config(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.liveblog_search_config(language text) RETURNS regconfig
    LANGUAGE sql IMMUTABLE
    AS $$
        SELECT (CASE language
                         WHEN 'fr' THEN 'liveblog_search_fr'
                         WHEN 'de' THEN 'liveblog_search_de'
                         WHEN 'es' THEN 'liveblog_search_es'
                         WHEN 'it' THEN 'liveblog_search_it'
                         WHEN 'nl' THEN 'liveblog_search_nl'
                         WHEN 'pt' THEN 'liveblog_search_pt'
                         WHEN 'none' THEN 'liveblog_search_none'
                         ELSE 'liveblog_search' END)::regconfig
    $$;


--
-- Name: search_comment(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.search_comment() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN  -- an insert has no row to replace
            DELETE FROM search_index WHERE doc = 'comment:' || NEW.id;
        END IF;
        INSERT INTO search_index (doc, kind, ref, session_id, event_id, at, title, body, tags)
        SELECT 'comment:' || NEW.id, 'comment', NEW.id::text, NEW.session_id, s.event_id, NEW.created_at, '', NEW.body, ''
        FROM sessions s WHERE s.id = NEW.session_id AND NEW.state = 'visible' AND NEW.deleted = 0;
        RETURN NULL;
    END $$;


--
-- Name: search_event_language(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.search_event_language() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        UPDATE search_index SET config = liveblog_search_config(NEW.language) WHERE event_id = NEW.id;
        RETURN NULL;
    END $$;


--
-- Name: search_index_config(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.search_index_config() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        NEW.config := liveblog_search_config((SELECT language FROM events WHERE id = NEW.event_id));
        RETURN NEW;
    END $$;


--
-- Name: search_item(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.search_item() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN  -- an insert has no row to replace
            DELETE FROM search_index WHERE doc = 'item:' || NEW.id;
        END IF;
        IF NEW.deleted = 0 AND NEW.body <> ''
           AND NOT (NEW.kind = 'poll' AND (NEW.data::jsonb ->> 'state') = 'draft') THEN
            INSERT INTO search_index (doc, kind, ref, session_id, event_id, at, title, body, tags)
            SELECT 'item:' || NEW.id, NEW.kind, NEW.id::text, NEW.session_id, s.event_id, NEW.typed_at, '', NEW.body, ''
            FROM sessions s WHERE s.id = NEW.session_id;
        END IF;
        RETURN NULL;
    END $$;


--
-- Name: search_session(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.search_session() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN  -- an insert has no row to replace
            DELETE FROM search_index WHERE doc = 'session:' || NEW.id;
        END IF;
        INSERT INTO search_index (doc, kind, ref, session_id, event_id, at, title, body, tags)
        VALUES ('session:' || NEW.id, 'session', NEW.id, NEW.id, NEW.event_id, NEW.starts_at, NEW.title,
                NEW.description || ' ' || replace(replace(replace(NEW.speakers, '["', ''), '"]', ''), '","', ', '),
                replace(replace(replace(replace(NEW.hashtags, '[', ''), ']', ''), '"', ''), ',', ' ')
                || ' ' || coalesce((SELECT string_agg(tag, ' ') FROM session_tags WHERE session_id = NEW.id), ''));
        RETURN NULL;
    END $$;


--
-- Name: search_summary(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.search_summary() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN  -- an insert has no row to replace
            DELETE FROM search_index WHERE doc = 'summary:' || NEW.session_id;
        END IF;
        INSERT INTO search_index (doc, kind, ref, session_id, event_id, at, title, body, tags)
        SELECT 'summary:' || s.id, 'summary', s.id, s.id, s.event_id, NEW.updated_at, s.title, NEW.summary, ''
        FROM sessions s WHERE s.id = NEW.session_id AND NEW.summary <> '';
        RETURN NULL;
    END $$;


--
-- Name: search_tags(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.search_tags() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    DECLARE
        sid TEXT := CASE WHEN TG_OP = 'DELETE' THEN OLD.session_id ELSE NEW.session_id END;
    BEGIN
        UPDATE search_index SET tags = coalesce((SELECT string_agg(DISTINCT tag, ' ') FROM session_tags
                                                 WHERE session_id = sid), '')
        WHERE doc = 'session:' || sid;
        RETURN NULL;
    END $$;


--
-- Name: liveblog_stem; Type: TEXT SEARCH DICTIONARY; Schema: public; Owner: -
--

CREATE TEXT SEARCH DICTIONARY public.liveblog_stem (
    TEMPLATE = pg_catalog.snowball,
    language = 'english' );


--
-- Name: liveblog_stem_de; Type: TEXT SEARCH DICTIONARY; Schema: public; Owner: -
--

CREATE TEXT SEARCH DICTIONARY public.liveblog_stem_de (
    TEMPLATE = pg_catalog.snowball,
    language = 'german' );


--
-- Name: liveblog_stem_es; Type: TEXT SEARCH DICTIONARY; Schema: public; Owner: -
--

CREATE TEXT SEARCH DICTIONARY public.liveblog_stem_es (
    TEMPLATE = pg_catalog.snowball,
    language = 'spanish' );


--
-- Name: liveblog_stem_fr; Type: TEXT SEARCH DICTIONARY; Schema: public; Owner: -
--

CREATE TEXT SEARCH DICTIONARY public.liveblog_stem_fr (
    TEMPLATE = pg_catalog.snowball,
    language = 'french' );


--
-- Name: liveblog_stem_it; Type: TEXT SEARCH DICTIONARY; Schema: public; Owner: -
--

CREATE TEXT SEARCH DICTIONARY public.liveblog_stem_it (
    TEMPLATE = pg_catalog.snowball,
    language = 'italian' );


--
-- Name: liveblog_stem_nl; Type: TEXT SEARCH DICTIONARY; Schema: public; Owner: -
--

CREATE TEXT SEARCH DICTIONARY public.liveblog_stem_nl (
    TEMPLATE = pg_catalog.snowball,
    language = 'dutch' );


--
-- Name: liveblog_stem_pt; Type: TEXT SEARCH DICTIONARY; Schema: public; Owner: -
--

CREATE TEXT SEARCH DICTIONARY public.liveblog_stem_pt (
    TEMPLATE = pg_catalog.snowball,
    language = 'portuguese' );


--
-- Name: liveblog_search; Type: TEXT SEARCH CONFIGURATION; Schema: public; Owner: -
--

CREATE TEXT SEARCH CONFIGURATION public.liveblog_search (
    PARSER = pg_catalog."default" );

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search
    ADD MAPPING FOR asciiword WITH public.liveblog_stem;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search
    ADD MAPPING FOR word WITH public.unaccent, public.liveblog_stem;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search
    ADD MAPPING FOR numword WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search
    ADD MAPPING FOR email WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search
    ADD MAPPING FOR url WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search
    ADD MAPPING FOR host WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search
    ADD MAPPING FOR sfloat WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search
    ADD MAPPING FOR version WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search
    ADD MAPPING FOR hword_numpart WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search
    ADD MAPPING FOR hword_part WITH public.unaccent, public.liveblog_stem;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search
    ADD MAPPING FOR hword_asciipart WITH public.liveblog_stem;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search
    ADD MAPPING FOR numhword WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search
    ADD MAPPING FOR asciihword WITH public.liveblog_stem;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search
    ADD MAPPING FOR hword WITH public.unaccent, public.liveblog_stem;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search
    ADD MAPPING FOR url_path WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search
    ADD MAPPING FOR file WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search
    ADD MAPPING FOR "float" WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search
    ADD MAPPING FOR "int" WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search
    ADD MAPPING FOR uint WITH simple;


--
-- Name: liveblog_search_de; Type: TEXT SEARCH CONFIGURATION; Schema: public; Owner: -
--

CREATE TEXT SEARCH CONFIGURATION public.liveblog_search_de (
    PARSER = pg_catalog."default" );

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_de
    ADD MAPPING FOR asciiword WITH public.liveblog_stem_de;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_de
    ADD MAPPING FOR word WITH public.unaccent, public.liveblog_stem_de;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_de
    ADD MAPPING FOR numword WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_de
    ADD MAPPING FOR email WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_de
    ADD MAPPING FOR url WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_de
    ADD MAPPING FOR host WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_de
    ADD MAPPING FOR sfloat WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_de
    ADD MAPPING FOR version WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_de
    ADD MAPPING FOR hword_numpart WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_de
    ADD MAPPING FOR hword_part WITH public.unaccent, public.liveblog_stem_de;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_de
    ADD MAPPING FOR hword_asciipart WITH public.liveblog_stem_de;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_de
    ADD MAPPING FOR numhword WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_de
    ADD MAPPING FOR asciihword WITH public.liveblog_stem_de;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_de
    ADD MAPPING FOR hword WITH public.unaccent, public.liveblog_stem_de;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_de
    ADD MAPPING FOR url_path WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_de
    ADD MAPPING FOR file WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_de
    ADD MAPPING FOR "float" WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_de
    ADD MAPPING FOR "int" WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_de
    ADD MAPPING FOR uint WITH simple;


--
-- Name: liveblog_search_es; Type: TEXT SEARCH CONFIGURATION; Schema: public; Owner: -
--

CREATE TEXT SEARCH CONFIGURATION public.liveblog_search_es (
    PARSER = pg_catalog."default" );

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_es
    ADD MAPPING FOR asciiword WITH public.liveblog_stem_es;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_es
    ADD MAPPING FOR word WITH public.unaccent, public.liveblog_stem_es;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_es
    ADD MAPPING FOR numword WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_es
    ADD MAPPING FOR email WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_es
    ADD MAPPING FOR url WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_es
    ADD MAPPING FOR host WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_es
    ADD MAPPING FOR sfloat WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_es
    ADD MAPPING FOR version WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_es
    ADD MAPPING FOR hword_numpart WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_es
    ADD MAPPING FOR hword_part WITH public.unaccent, public.liveblog_stem_es;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_es
    ADD MAPPING FOR hword_asciipart WITH public.liveblog_stem_es;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_es
    ADD MAPPING FOR numhword WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_es
    ADD MAPPING FOR asciihword WITH public.liveblog_stem_es;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_es
    ADD MAPPING FOR hword WITH public.unaccent, public.liveblog_stem_es;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_es
    ADD MAPPING FOR url_path WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_es
    ADD MAPPING FOR file WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_es
    ADD MAPPING FOR "float" WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_es
    ADD MAPPING FOR "int" WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_es
    ADD MAPPING FOR uint WITH simple;


--
-- Name: liveblog_search_fr; Type: TEXT SEARCH CONFIGURATION; Schema: public; Owner: -
--

CREATE TEXT SEARCH CONFIGURATION public.liveblog_search_fr (
    PARSER = pg_catalog."default" );

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_fr
    ADD MAPPING FOR asciiword WITH public.liveblog_stem_fr;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_fr
    ADD MAPPING FOR word WITH public.unaccent, public.liveblog_stem_fr;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_fr
    ADD MAPPING FOR numword WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_fr
    ADD MAPPING FOR email WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_fr
    ADD MAPPING FOR url WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_fr
    ADD MAPPING FOR host WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_fr
    ADD MAPPING FOR sfloat WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_fr
    ADD MAPPING FOR version WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_fr
    ADD MAPPING FOR hword_numpart WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_fr
    ADD MAPPING FOR hword_part WITH public.unaccent, public.liveblog_stem_fr;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_fr
    ADD MAPPING FOR hword_asciipart WITH public.liveblog_stem_fr;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_fr
    ADD MAPPING FOR numhword WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_fr
    ADD MAPPING FOR asciihword WITH public.liveblog_stem_fr;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_fr
    ADD MAPPING FOR hword WITH public.unaccent, public.liveblog_stem_fr;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_fr
    ADD MAPPING FOR url_path WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_fr
    ADD MAPPING FOR file WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_fr
    ADD MAPPING FOR "float" WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_fr
    ADD MAPPING FOR "int" WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_fr
    ADD MAPPING FOR uint WITH simple;


--
-- Name: liveblog_search_it; Type: TEXT SEARCH CONFIGURATION; Schema: public; Owner: -
--

CREATE TEXT SEARCH CONFIGURATION public.liveblog_search_it (
    PARSER = pg_catalog."default" );

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_it
    ADD MAPPING FOR asciiword WITH public.liveblog_stem_it;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_it
    ADD MAPPING FOR word WITH public.unaccent, public.liveblog_stem_it;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_it
    ADD MAPPING FOR numword WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_it
    ADD MAPPING FOR email WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_it
    ADD MAPPING FOR url WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_it
    ADD MAPPING FOR host WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_it
    ADD MAPPING FOR sfloat WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_it
    ADD MAPPING FOR version WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_it
    ADD MAPPING FOR hword_numpart WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_it
    ADD MAPPING FOR hword_part WITH public.unaccent, public.liveblog_stem_it;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_it
    ADD MAPPING FOR hword_asciipart WITH public.liveblog_stem_it;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_it
    ADD MAPPING FOR numhword WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_it
    ADD MAPPING FOR asciihword WITH public.liveblog_stem_it;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_it
    ADD MAPPING FOR hword WITH public.unaccent, public.liveblog_stem_it;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_it
    ADD MAPPING FOR url_path WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_it
    ADD MAPPING FOR file WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_it
    ADD MAPPING FOR "float" WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_it
    ADD MAPPING FOR "int" WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_it
    ADD MAPPING FOR uint WITH simple;


--
-- Name: liveblog_search_nl; Type: TEXT SEARCH CONFIGURATION; Schema: public; Owner: -
--

CREATE TEXT SEARCH CONFIGURATION public.liveblog_search_nl (
    PARSER = pg_catalog."default" );

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_nl
    ADD MAPPING FOR asciiword WITH public.liveblog_stem_nl;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_nl
    ADD MAPPING FOR word WITH public.unaccent, public.liveblog_stem_nl;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_nl
    ADD MAPPING FOR numword WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_nl
    ADD MAPPING FOR email WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_nl
    ADD MAPPING FOR url WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_nl
    ADD MAPPING FOR host WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_nl
    ADD MAPPING FOR sfloat WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_nl
    ADD MAPPING FOR version WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_nl
    ADD MAPPING FOR hword_numpart WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_nl
    ADD MAPPING FOR hword_part WITH public.unaccent, public.liveblog_stem_nl;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_nl
    ADD MAPPING FOR hword_asciipart WITH public.liveblog_stem_nl;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_nl
    ADD MAPPING FOR numhword WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_nl
    ADD MAPPING FOR asciihword WITH public.liveblog_stem_nl;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_nl
    ADD MAPPING FOR hword WITH public.unaccent, public.liveblog_stem_nl;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_nl
    ADD MAPPING FOR url_path WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_nl
    ADD MAPPING FOR file WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_nl
    ADD MAPPING FOR "float" WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_nl
    ADD MAPPING FOR "int" WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_nl
    ADD MAPPING FOR uint WITH simple;


--
-- Name: liveblog_search_none; Type: TEXT SEARCH CONFIGURATION; Schema: public; Owner: -
--

CREATE TEXT SEARCH CONFIGURATION public.liveblog_search_none (
    PARSER = pg_catalog."default" );

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_none
    ADD MAPPING FOR asciiword WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_none
    ADD MAPPING FOR word WITH public.unaccent, simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_none
    ADD MAPPING FOR numword WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_none
    ADD MAPPING FOR email WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_none
    ADD MAPPING FOR url WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_none
    ADD MAPPING FOR host WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_none
    ADD MAPPING FOR sfloat WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_none
    ADD MAPPING FOR version WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_none
    ADD MAPPING FOR hword_numpart WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_none
    ADD MAPPING FOR hword_part WITH public.unaccent, simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_none
    ADD MAPPING FOR hword_asciipart WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_none
    ADD MAPPING FOR numhword WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_none
    ADD MAPPING FOR asciihword WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_none
    ADD MAPPING FOR hword WITH public.unaccent, simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_none
    ADD MAPPING FOR url_path WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_none
    ADD MAPPING FOR file WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_none
    ADD MAPPING FOR "float" WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_none
    ADD MAPPING FOR "int" WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_none
    ADD MAPPING FOR uint WITH simple;


--
-- Name: liveblog_search_pt; Type: TEXT SEARCH CONFIGURATION; Schema: public; Owner: -
--

CREATE TEXT SEARCH CONFIGURATION public.liveblog_search_pt (
    PARSER = pg_catalog."default" );

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_pt
    ADD MAPPING FOR asciiword WITH public.liveblog_stem_pt;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_pt
    ADD MAPPING FOR word WITH public.unaccent, public.liveblog_stem_pt;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_pt
    ADD MAPPING FOR numword WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_pt
    ADD MAPPING FOR email WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_pt
    ADD MAPPING FOR url WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_pt
    ADD MAPPING FOR host WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_pt
    ADD MAPPING FOR sfloat WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_pt
    ADD MAPPING FOR version WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_pt
    ADD MAPPING FOR hword_numpart WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_pt
    ADD MAPPING FOR hword_part WITH public.unaccent, public.liveblog_stem_pt;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_pt
    ADD MAPPING FOR hword_asciipart WITH public.liveblog_stem_pt;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_pt
    ADD MAPPING FOR numhword WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_pt
    ADD MAPPING FOR asciihword WITH public.liveblog_stem_pt;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_pt
    ADD MAPPING FOR hword WITH public.unaccent, public.liveblog_stem_pt;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_pt
    ADD MAPPING FOR url_path WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_pt
    ADD MAPPING FOR file WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_pt
    ADD MAPPING FOR "float" WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_pt
    ADD MAPPING FOR "int" WITH simple;

ALTER TEXT SEARCH CONFIGURATION public.liveblog_search_pt
    ADD MAPPING FOR uint WITH simple;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: accounts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.accounts (
    id bigint NOT NULL,
    username text NOT NULL,
    password_hash text NOT NULL,
    role text DEFAULT 'organiser'::text NOT NULL,
    created_at text NOT NULL,
    banned_at text
);


--
-- Name: accounts_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.accounts ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME public.accounts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: archives; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.archives (
    session_id text NOT NULL,
    summary text DEFAULT ''::text NOT NULL,
    summary_html text DEFAULT ''::text NOT NULL,
    summary_by text DEFAULT ''::text NOT NULL,
    archived_at text NOT NULL,
    updated_at text NOT NULL,
    tags_synced_at text NOT NULL
);


--
-- Name: card_sections; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.card_sections (
    session_id text NOT NULL,
    card_key text NOT NULL,
    stream_epoch text NOT NULL,
    last_seq bigint NOT NULL,
    notes_html text NOT NULL,
    posts_html text NOT NULL,
    notes integer NOT NULL,
    posts integer NOT NULL,
    words integer NOT NULL
);


--
-- Name: changes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.changes (
    session_id text NOT NULL,
    seq bigint NOT NULL,
    op text NOT NULL,
    item_id bigint,
    payload text NOT NULL,
    created_at text NOT NULL
);


--
-- Name: client_ops; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.client_ops (
    session_id text NOT NULL,
    client_id text NOT NULL,
    fingerprint text NOT NULL,
    response text NOT NULL,
    created_at text NOT NULL
);


--
-- Name: comment_threads; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.comment_threads (
    session_id text NOT NULL,
    locked integer DEFAULT 0 NOT NULL
);


--
-- Name: comments; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.comments (
    id bigint NOT NULL,
    session_id text NOT NULL,
    parent_id bigint,
    account_id bigint NOT NULL,
    author text NOT NULL,
    body text NOT NULL,
    html text NOT NULL,
    state text DEFAULT 'visible'::text NOT NULL,
    deleted integer DEFAULT 0 NOT NULL,
    ip text DEFAULT ''::text NOT NULL,
    created_at text NOT NULL,
    updated_at text NOT NULL,
    edited integer DEFAULT 0 NOT NULL,
    CONSTRAINT comments_state_check CHECK ((state = ANY (ARRAY['visible'::text, 'pending'::text, 'hidden'::text])))
);


--
-- Name: comments_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.comments ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME public.comments_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: event_comment_settings; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.event_comment_settings (
    event_id text NOT NULL,
    premoderate integer DEFAULT 0 NOT NULL
);


--
-- Name: events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.events (
    id text NOT NULL,
    title text NOT NULL,
    starts_on text NOT NULL,
    ends_on text NOT NULL,
    venue text DEFAULT ''::text NOT NULL,
    description text DEFAULT ''::text NOT NULL,
    hashtags text DEFAULT '[]'::text NOT NULL,
    created_at text NOT NULL,
    updated_at text NOT NULL,
    language text DEFAULT 'en'::text NOT NULL,
    show_viewers integer DEFAULT 1 NOT NULL,
    public_reasons integer DEFAULT 0 NOT NULL
);


--
-- Name: feed_cursors; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.feed_cursors (
    source text NOT NULL,
    value text NOT NULL,
    updated_at text NOT NULL
);


--
-- Name: feed_policies; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.feed_policies (
    event_id text NOT NULL,
    session_id text DEFAULT ''::text NOT NULL,
    moderate integer NOT NULL,
    updated_at text NOT NULL
);


--
-- Name: feed_reads; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.feed_reads (
    event_id text NOT NULL,
    session_id text DEFAULT ''::text NOT NULL,
    network text NOT NULL,
    reads integer DEFAULT 0 NOT NULL,
    updated_at text NOT NULL
);


--
-- Name: feed_rules; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.feed_rules (
    event_id text NOT NULL,
    kind text NOT NULL,
    value text NOT NULL,
    created_by text DEFAULT ''::text NOT NULL,
    created_at text NOT NULL,
    CONSTRAINT feed_rules_kind_check CHECK ((kind = ANY (ARRAY['allow_author'::text, 'block_author'::text, 'block_word'::text])))
);


--
-- Name: invites; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.invites (
    id text NOT NULL,
    token_hash text NOT NULL,
    event_id text NOT NULL,
    session_id text,
    name text NOT NULL,
    created_at text NOT NULL,
    revoked_at text
);


--
-- Name: item_cards; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.item_cards (
    item_id bigint NOT NULL,
    card_key text NOT NULL,
    item_version integer NOT NULL,
    html text NOT NULL,
    words integer NOT NULL,
    rendered_at text NOT NULL
);


--
-- Name: item_history; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.item_history (
    item_id bigint NOT NULL,
    version integer NOT NULL,
    body text NOT NULL,
    html text NOT NULL,
    written_at text NOT NULL,
    replaced_at text NOT NULL
);


--
-- Name: items; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.items (
    id bigint NOT NULL,
    session_id text NOT NULL,
    kind text NOT NULL,
    client_id text NOT NULL,
    author text DEFAULT ''::text NOT NULL,
    author_ref text,
    body text DEFAULT ''::text NOT NULL,
    html text DEFAULT ''::text NOT NULL,
    key_point integer DEFAULT 0 NOT NULL,
    data text DEFAULT '{}'::text NOT NULL,
    typed_at text NOT NULL,
    received_at text NOT NULL,
    sort_at text NOT NULL,
    updated_at text NOT NULL,
    deleted integer DEFAULT 0 NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    seq bigint NOT NULL
);


--
-- Name: items_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.items ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME public.items_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: liveblog_schema; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.liveblog_schema (
    version integer NOT NULL
);


--
-- Name: login_sessions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.login_sessions (
    token_hash text NOT NULL,
    account_id bigint NOT NULL,
    created_at text NOT NULL,
    expires_at text NOT NULL,
    revoked_at text
);


--
-- Name: media; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.media (
    id text NOT NULL,
    session_id text NOT NULL,
    content_type text NOT NULL,
    bytes bytea NOT NULL,
    size integer NOT NULL,
    sha256 text NOT NULL,
    uploaded_by text,
    created_at text NOT NULL
);


--
-- Name: moderation_log; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.moderation_log (
    id bigint NOT NULL,
    event_id text NOT NULL,
    session_id text,
    at text NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    target_kind text NOT NULL,
    target_id text NOT NULL,
    reason text DEFAULT ''::text NOT NULL
);


--
-- Name: moderation_log_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.moderation_log ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME public.moderation_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: password_resets; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.password_resets (
    token_hash text NOT NULL,
    account_id bigint NOT NULL,
    created_at text NOT NULL,
    expires_at text NOT NULL,
    used_at text
);


--
-- Name: questions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.questions (
    item_id bigint NOT NULL,
    session_id text NOT NULL,
    participant text NOT NULL,
    name text DEFAULT ''::text NOT NULL,
    body text NOT NULL,
    ip text DEFAULT ''::text NOT NULL,
    created_at text NOT NULL
);


--
-- Name: search_index; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.search_index (
    doc text NOT NULL,
    kind text NOT NULL,
    ref text NOT NULL,
    session_id text NOT NULL,
    event_id text NOT NULL,
    at text NOT NULL,
    title text NOT NULL,
    body text NOT NULL,
    tags text NOT NULL,
    config regconfig DEFAULT 'public.liveblog_search'::regconfig NOT NULL,
    document tsvector GENERATED ALWAYS AS (((setweight(to_tsvector(config, title), 'A'::"char") || setweight(to_tsvector(config, tags), 'B'::"char")) || setweight(to_tsvector(config, body), 'C'::"char"))) STORED
);


--
-- Name: session_tags; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.session_tags (
    session_id text NOT NULL,
    tag text NOT NULL,
    source text NOT NULL,
    CONSTRAINT session_tags_source_check CHECK ((source = ANY (ARRAY['hashtag'::text, 'organiser'::text])))
);


--
-- Name: sessions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sessions (
    id text NOT NULL,
    event_id text NOT NULL,
    title text NOT NULL,
    starts_at text NOT NULL,
    ends_at text NOT NULL,
    room text DEFAULT ''::text NOT NULL,
    speakers text DEFAULT '[]'::text NOT NULL,
    hashtags text DEFAULT '[]'::text NOT NULL,
    description text DEFAULT ''::text NOT NULL,
    state text DEFAULT 'scheduled'::text NOT NULL,
    question_moderation integer DEFAULT 0 NOT NULL,
    stream_epoch text NOT NULL,
    last_seq bigint DEFAULT 0 NOT NULL,
    ended_at text,
    created_at text NOT NULL,
    updated_at text NOT NULL,
    questions_audience text DEFAULT 'anyone'::text NOT NULL,
    kind text DEFAULT 'session'::text NOT NULL,
    cancelled integer DEFAULT 0 NOT NULL,
    tags text DEFAULT '[]'::text NOT NULL,
    source_uid text,
    exported_seq integer,
    recording_url text DEFAULT ''::text NOT NULL,
    recording_offset integer DEFAULT 0 NOT NULL,
    CONSTRAINT sessions_kind_check CHECK ((kind = ANY (ARRAY['session'::text, 'event_feed'::text]))),
    CONSTRAINT sessions_state_check CHECK ((state = ANY (ARRAY['scheduled'::text, 'live'::text, 'ended'::text])))
);


--
-- Name: social_posts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.social_posts (
    id bigint NOT NULL,
    network text NOT NULL,
    post_id text NOT NULL,
    author_handle text DEFAULT ''::text NOT NULL,
    author_name text DEFAULT ''::text NOT NULL,
    body text DEFAULT ''::text NOT NULL,
    url text DEFAULT ''::text NOT NULL,
    posted_at text NOT NULL,
    data text DEFAULT '{}'::text NOT NULL,
    collected_at text NOT NULL,
    deleted_upstream_at text
);


--
-- Name: social_posts_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.social_posts ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME public.social_posts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: social_routes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.social_routes (
    post_row bigint NOT NULL,
    event_id text NOT NULL,
    session_id text DEFAULT ''::text NOT NULL,
    state text NOT NULL,
    item_id bigint,
    routed_at text NOT NULL,
    decided_at text,
    decided_by text,
    CONSTRAINT social_routes_state_check CHECK ((state = ANY (ARRAY['pending'::text, 'approved'::text, 'rejected'::text, 'removed'::text])))
);


--
-- Name: upvotes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.upvotes (
    question_id bigint NOT NULL,
    participant text NOT NULL,
    created_at text NOT NULL
);


--
-- Name: votes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.votes (
    poll_id bigint NOT NULL,
    participant text NOT NULL,
    choice text NOT NULL,
    ip text DEFAULT ''::text NOT NULL,
    created_at text NOT NULL,
    updated_at text NOT NULL
);


--
-- Data for Name: accounts; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.accounts (id, username, password_hash, role, created_at, banned_at) FROM stdin;
1	Organiser	$argon2id$v=19$m=65536,t=3,p=4$x$y	organiser	2026-05-14T09:00:00Z	\N
2	reader	$argon2id$x	reader	2026-05-14T09:00:00Z	\N
3	troll	$argon2id$x	reader	2026-05-14T09:00:00Z	2026-05-14T09:00:00Z
\.


--
-- Data for Name: archives; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.archives (session_id, summary, summary_html, summary_by, archived_at, updated_at, tags_synced_at) FROM stdin;
s1	Wombats summarised	<p>Wombats summarised</p>		2026-05-14T09:00:00Z	2026-05-14T09:00:00Z	2026-05-14T09:00:00Z
\.


--
-- Data for Name: card_sections; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.card_sections (session_id, card_key, stream_epoch, last_seq, notes_html, posts_html, notes, posts, words) FROM stdin;
s1	k1	epoch1	11	<ol></ol>	<ol></ol>	1	1	4
\.


--
-- Data for Name: changes; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.changes (session_id, seq, op, item_id, payload, created_at) FROM stdin;
s1	1	item.created	1	{"type":"change","seq":1,"op":"item.created","item":{"id":1,"body":"Wombats dig burrows"}}	2026-05-14T09:00:00Z
s1	2	item.redacted	2	{"type":"change","seq":2,"op":"item.redacted","item_id":2}	2026-05-14T09:00:00Z
s1	3	item.created	3	{"type":"change","seq":3,"op":"item.created","item":{"id":3,"body":"Best burrow?"}}	2026-05-14T09:00:00Z
s1	4	item.created	4	{"type":"change","seq":4,"op":"item.created","item":{"id":4,"body":"Do wombats migrate?"}}	2026-05-14T09:00:00Z
s1	5	item.created	5	{"type":"change","seq":5,"op":"item.created","item":{"id":5,"state":"pending"}}	2026-05-14T09:00:00Z
s1	6	item.created	6	{"type":"change","seq":6,"op":"item.created","item":{"id":6,"body":"A toot about wombats"}}	2026-05-14T09:00:00Z
s1	7	item.updated	1	{"type":"change","seq":7,"op":"item.updated","item":{"id":1,"body":"Wombats dig long burrows"}}	2026-05-14T09:00:00Z
s1	8	item.deleted	2	{"type":"change","seq":8,"op":"item.deleted","item":{"id":2,"deleted":true}}	2026-05-14T09:00:00Z
s1	9	comment.redacted	\N	{"type":"change","seq":9,"op":"comment.redacted","comment_id":2}	2026-05-14T09:00:00Z
s1	10	comment.created	\N	{"type":"change","seq":10,"op":"comment.created","comment":{"id":1,"html":"<p>Lovely talk</p>"}}	2026-05-14T09:00:00Z
s1	11	comment.updated	\N	{"type":"change","seq":11,"op":"comment.updated","comment":{"id":2,"state":"hidden"}}	2026-05-14T09:00:00Z
s2	1	item.created	7	{"type":"change","seq":1,"op":"item.created","item":{"id":7,"body":"S\\u00e9ance notes"}}	2026-05-14T09:00:00Z
s2	2	session.updated	\N	{"type":"change","seq":2,"op":"session.updated","session":{"id":"s2"}}	2026-05-14T09:00:00Z
\.


--
-- Data for Name: client_ops; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.client_ops (session_id, client_id, fingerprint, response, created_at) FROM stdin;
s1	c1	f1	{"ok":true}	2026-05-14T09:00:00Z
\.


--
-- Data for Name: comment_threads; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.comment_threads (session_id, locked) FROM stdin;
s1	1
\.


--
-- Data for Name: comments; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.comments (id, session_id, parent_id, account_id, author, body, html, state, deleted, ip, created_at, updated_at, edited) FROM stdin;
1	s1	\N	2	reader	Lovely talk	<p>Lovely talk</p>	visible	0	127.0.0.1	2026-05-14T09:00:00Z	2026-05-14T09:00:00Z	0
2	s1	\N	3	reader	A rude comment	<p>A rude comment</p>	hidden	0	127.0.0.1	2026-05-14T09:00:00Z	2026-05-14T09:00:00Z	0
\.


--
-- Data for Name: event_comment_settings; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.event_comment_settings (event_id, premoderate) FROM stdin;
ev1	1
\.


--
-- Data for Name: events; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.events (id, title, starts_on, ends_on, venue, description, hashtags, created_at, updated_at, language, show_viewers, public_reasons) FROM stdin;
ev1	Upgrade Conf	2026-05-14	2026-05-15	Hall A	Where old data meets new code	["upconf"]	2026-05-14T09:00:00Z	2026-05-14T09:00:00Z	en	0	1
\.


--
-- Data for Name: feed_cursors; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.feed_cursors (source, value, updated_at) FROM stdin;
mastodon:upconf	109	2026-05-14T09:00:00Z
\.


--
-- Data for Name: feed_policies; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.feed_policies (event_id, session_id, moderate, updated_at) FROM stdin;
ev1		1	2026-05-14T09:00:00Z
\.


--
-- Data for Name: feed_reads; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.feed_reads (event_id, session_id, network, reads, updated_at) FROM stdin;
ev1		x	12	2026-05-14T09:00:00Z
\.


--
-- Data for Name: feed_rules; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.feed_rules (event_id, kind, value, created_by, created_at) FROM stdin;
ev1	block_word	spam		2026-05-14T09:00:00Z
\.


--
-- Data for Name: invites; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.invites (id, token_hash, event_id, session_id, name, created_at, revoked_at) FROM stdin;
inv1	invtok	ev1	s1	Ada	2026-05-14T09:00:00Z	\N
\.


--
-- Data for Name: item_cards; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.item_cards (item_id, card_key, item_version, html, words, rendered_at) FROM stdin;
1	k1	2	<li>card</li>	4	2026-05-14T09:00:00Z
\.


--
-- Data for Name: item_history; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.item_history (item_id, version, body, html, written_at, replaced_at) FROM stdin;
1	1	Wombats dig burrows	<p>Wombats dig burrows</p>	2026-05-14T09:01:00Z	2026-05-14T09:30:00Z
\.


--
-- Data for Name: items; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.items (id, session_id, kind, client_id, author, author_ref, body, html, key_point, data, typed_at, received_at, sort_at, updated_at, deleted, version, seq) FROM stdin;
3	s1	poll	c3	Ada	\N	Best burrow?	<p>Best burrow?</p>	0	{"state":"open","options":["deep","wide"]}	2026-05-14T09:03:00Z	2026-05-14T09:03:00Z	2026-05-14T09:03:00Z	2026-05-14T09:03:00Z	0	1	3
4	s1	question	c4	Ada	p-ask	Do wombats migrate?	<p>Do wombats migrate?</p>	0	{"state":"visible"}	2026-05-14T09:04:00Z	2026-05-14T09:04:00Z	2026-05-14T09:04:00Z	2026-05-14T09:04:00Z	0	1	4
5	s1	question	c5	Ada	p-ask	A question never shown	<p>A question never shown</p>	0	{"state":"pending"}	2026-05-14T09:05:00Z	2026-05-14T09:05:00Z	2026-05-14T09:05:00Z	2026-05-14T09:05:00Z	0	1	5
6	s1	social	c6	Ada	\N	A toot about wombats	<p>A toot about wombats</p>	0	{"state":"approved","network":"mastodon"}	2026-05-14T09:06:00Z	2026-05-14T09:06:00Z	2026-05-14T09:06:00Z	2026-05-14T09:06:00Z	0	1	6
7	s2	note	c7	Ada	\N	Séance notes	<p>Séance notes</p>	0	{}	2026-05-14T09:07:00Z	2026-05-14T09:07:00Z	2026-05-14T09:07:00Z	2026-05-14T09:07:00Z	0	1	1
1	s1	note	c1	Ada	\N	Wombats dig long burrows	<p>Wombats dig burrows</p>	1	{}	2026-05-14T09:01:00Z	2026-05-14T09:01:00Z	2026-05-14T09:01:00Z	2026-05-14T09:30:00Z	0	2	7
2	s1	note	c2	Ada	\N	A secret that was deleted	<p>A secret that was deleted</p>	0	{}	2026-05-14T09:02:00Z	2026-05-14T09:02:00Z	2026-05-14T09:02:00Z	2026-05-14T09:31:00Z	1	2	8
\.


--
-- Data for Name: liveblog_schema; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.liveblog_schema (version) FROM stdin;
15
\.


--
-- Data for Name: login_sessions; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.login_sessions (token_hash, account_id, created_at, expires_at, revoked_at) FROM stdin;
tok1	1	2026-05-14T09:00:00Z	2027-01-01T00:00:00Z	\N
\.


--
-- Data for Name: media; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.media (id, session_id, content_type, bytes, size, sha256, uploaded_by, created_at) FROM stdin;
m1	s1	image/png	\\x89504e470d0a1a0a0001ff	11	abababababababababababababababababababababababababababababababab	Ada	2026-05-14T09:00:00Z
\.


--
-- Data for Name: moderation_log; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.moderation_log (id, event_id, session_id, at, actor, action, target_kind, target_id, reason) FROM stdin;
1	ev1	s1	2026-05-14T09:00:00Z	Organiser	delete	item	2	off topic
2	ev1	s1	2026-05-14T09:00:00Z	Organiser	hide	comment	2	rude
\.


--
-- Data for Name: password_resets; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.password_resets (token_hash, account_id, created_at, expires_at, used_at) FROM stdin;
reset1	2	2026-05-14T09:00:00Z	2026-05-15T00:00:00Z	\N
\.


--
-- Data for Name: questions; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.questions (item_id, session_id, participant, name, body, ip, created_at) FROM stdin;
4	s1	p-ask	Bea	Do wombats migrate?		2026-05-14T09:00:00Z
5	s1	p-ask		A question never shown		2026-05-14T09:00:00Z
\.


--
-- Data for Name: search_index; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.search_index (doc, kind, ref, session_id, event_id, at, title, body, tags, config) FROM stdin;
session:s2	session	s2	s2	ev1	2026-05-14T11:00:00Z	Live Séance	Diacritics still findable Ada Lovelace, Grace Hopper	wombats 	public.liveblog_search
session:ev1-feed	session	ev1-feed	ev1-feed	ev1	2026-05-14T00:00:00Z	Around the event	 Ada Lovelace, Grace Hopper	wombats 	public.liveblog_search
item:3	poll	3	s1	ev1	2026-05-14T09:03:00Z		Best burrow?		public.liveblog_search
item:4	question	4	s1	ev1	2026-05-14T09:04:00Z		Do wombats migrate?		public.liveblog_search
item:5	question	5	s1	ev1	2026-05-14T09:05:00Z		A question never shown		public.liveblog_search
item:6	social	6	s1	ev1	2026-05-14T09:06:00Z		A toot about wombats		public.liveblog_search
item:7	note	7	s2	ev1	2026-05-14T09:07:00Z		Séance notes		public.liveblog_search
item:1	note	1	s1	ev1	2026-05-14T09:01:00Z		Wombats dig long burrows		public.liveblog_search
summary:s1	summary	s1	s1	ev1	2026-05-14T09:00:00Z	Migrating Wombats	Wombats summarised		public.liveblog_search
session:s1	session	s1	s1	ev1	2026-05-14T09:00:00Z	Migrating Wombats	How wombats move house Ada Lovelace, Grace Hopper	wombats zoology	public.liveblog_search
comment:1	comment	1	s1	ev1	2026-05-14T09:00:00Z		Lovely talk		public.liveblog_search
\.


--
-- Data for Name: session_tags; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.session_tags (session_id, tag, source) FROM stdin;
s1	wombats	hashtag
s1	zoology	organiser
\.


--
-- Data for Name: sessions; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.sessions (id, event_id, title, starts_at, ends_at, room, speakers, hashtags, description, state, question_moderation, stream_epoch, last_seq, ended_at, created_at, updated_at, questions_audience, kind, cancelled, tags, source_uid, exported_seq, recording_url, recording_offset) FROM stdin;
s1	ev1	Migrating Wombats	2026-05-14T09:00:00Z	2026-05-14T10:00:00Z	Room 1	["Ada Lovelace","Grace Hopper"]	["wombats"]	How wombats move house	ended	1	epoch1	11	2026-05-14T10:00:00Z	2026-05-14T09:00:00Z	2026-05-14T09:00:00Z	anyone	session	0	["track-a"]	uid-1	\N	https://v.example/1	30
s2	ev1	Live Séance	2026-05-14T11:00:00Z	2026-05-14T12:00:00Z	Room 1	["Ada Lovelace","Grace Hopper"]	["wombats"]	Diacritics still findable	live	0	epoch1	2	\N	2026-05-14T09:00:00Z	2026-05-14T09:00:00Z	anyone	session	0	[]	\N	\N		0
ev1-feed	ev1	Around the event	2026-05-14T00:00:00Z	2026-05-15T23:59:59Z	Room 1	["Ada Lovelace","Grace Hopper"]	["wombats"]		scheduled	0	epoch1	0	\N	2026-05-14T09:00:00Z	2026-05-14T09:00:00Z	anyone	event_feed	0	[]	\N	\N		0
\.


--
-- Data for Name: social_posts; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.social_posts (id, network, post_id, author_handle, author_name, body, url, posted_at, data, collected_at, deleted_upstream_at) FROM stdin;
1	mastodon	109	@ada@example.social	Ada	A toot about wombats	https://example.social/@ada/109	2026-05-14T09:00:00Z	{"media":[]}	2026-05-14T09:00:00Z	\N
2	bluesky	at://x/1	spam.bsky				2026-05-14T09:00:00Z	{}	2026-05-14T09:00:00Z	\N
\.


--
-- Data for Name: social_routes; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.social_routes (post_row, event_id, session_id, state, item_id, routed_at, decided_at, decided_by) FROM stdin;
1	ev1	s1	approved	6	2026-05-14T09:00:00Z	\N	\N
2	ev1		rejected	\N	2026-05-14T09:00:00Z	\N	org
\.


--
-- Data for Name: upvotes; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.upvotes (question_id, participant, created_at) FROM stdin;
4	p1	2026-05-14T09:00:00Z
4	p2	2026-05-14T09:00:00Z
\.


--
-- Data for Name: votes; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.votes (poll_id, participant, choice, ip, created_at, updated_at) FROM stdin;
3	p1	deep	127.0.0.1	2026-05-14T09:00:00Z	2026-05-14T09:00:00Z
3	p2	deep	127.0.0.1	2026-05-14T09:00:00Z	2026-05-14T09:00:00Z
3	p3	wide	127.0.0.1	2026-05-14T09:00:00Z	2026-05-14T09:00:00Z
\.


--
-- Name: accounts_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.accounts_id_seq', 3, true);


--
-- Name: comments_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.comments_id_seq', 2, true);


--
-- Name: items_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.items_id_seq', 7, true);


--
-- Name: moderation_log_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.moderation_log_id_seq', 2, true);


--
-- Name: social_posts_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.social_posts_id_seq', 2, true);


--
-- Name: accounts accounts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_pkey PRIMARY KEY (id);


--
-- Name: accounts accounts_username_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_username_key UNIQUE (username);


--
-- Name: archives archives_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.archives
    ADD CONSTRAINT archives_pkey PRIMARY KEY (session_id);


--
-- Name: card_sections card_sections_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.card_sections
    ADD CONSTRAINT card_sections_pkey PRIMARY KEY (session_id);


--
-- Name: changes changes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.changes
    ADD CONSTRAINT changes_pkey PRIMARY KEY (session_id, seq);


--
-- Name: client_ops client_ops_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.client_ops
    ADD CONSTRAINT client_ops_pkey PRIMARY KEY (session_id, client_id);


--
-- Name: comment_threads comment_threads_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.comment_threads
    ADD CONSTRAINT comment_threads_pkey PRIMARY KEY (session_id);


--
-- Name: comments comments_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.comments
    ADD CONSTRAINT comments_pkey PRIMARY KEY (id);


--
-- Name: event_comment_settings event_comment_settings_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.event_comment_settings
    ADD CONSTRAINT event_comment_settings_pkey PRIMARY KEY (event_id);


--
-- Name: events events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.events
    ADD CONSTRAINT events_pkey PRIMARY KEY (id);


--
-- Name: feed_cursors feed_cursors_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.feed_cursors
    ADD CONSTRAINT feed_cursors_pkey PRIMARY KEY (source);


--
-- Name: feed_policies feed_policies_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.feed_policies
    ADD CONSTRAINT feed_policies_pkey PRIMARY KEY (event_id, session_id);


--
-- Name: feed_reads feed_reads_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.feed_reads
    ADD CONSTRAINT feed_reads_pkey PRIMARY KEY (event_id, session_id, network);


--
-- Name: feed_rules feed_rules_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.feed_rules
    ADD CONSTRAINT feed_rules_pkey PRIMARY KEY (event_id, kind, value);


--
-- Name: invites invites_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.invites
    ADD CONSTRAINT invites_pkey PRIMARY KEY (id);


--
-- Name: invites invites_token_hash_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.invites
    ADD CONSTRAINT invites_token_hash_key UNIQUE (token_hash);


--
-- Name: item_cards item_cards_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.item_cards
    ADD CONSTRAINT item_cards_pkey PRIMARY KEY (item_id);


--
-- Name: item_history item_history_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.item_history
    ADD CONSTRAINT item_history_pkey PRIMARY KEY (item_id, version);


--
-- Name: items items_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.items
    ADD CONSTRAINT items_pkey PRIMARY KEY (id);


--
-- Name: items items_session_id_client_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.items
    ADD CONSTRAINT items_session_id_client_id_key UNIQUE (session_id, client_id);


--
-- Name: login_sessions login_sessions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.login_sessions
    ADD CONSTRAINT login_sessions_pkey PRIMARY KEY (token_hash);


--
-- Name: media media_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.media
    ADD CONSTRAINT media_pkey PRIMARY KEY (id);


--
-- Name: moderation_log moderation_log_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.moderation_log
    ADD CONSTRAINT moderation_log_pkey PRIMARY KEY (id);


--
-- Name: password_resets password_resets_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.password_resets
    ADD CONSTRAINT password_resets_pkey PRIMARY KEY (token_hash);


--
-- Name: questions questions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.questions
    ADD CONSTRAINT questions_pkey PRIMARY KEY (item_id);


--
-- Name: search_index search_index_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.search_index
    ADD CONSTRAINT search_index_pkey PRIMARY KEY (doc);


--
-- Name: session_tags session_tags_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.session_tags
    ADD CONSTRAINT session_tags_pkey PRIMARY KEY (session_id, tag, source);


--
-- Name: sessions sessions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_pkey PRIMARY KEY (id);


--
-- Name: social_posts social_posts_network_post_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.social_posts
    ADD CONSTRAINT social_posts_network_post_id_key UNIQUE (network, post_id);


--
-- Name: social_posts social_posts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.social_posts
    ADD CONSTRAINT social_posts_pkey PRIMARY KEY (id);


--
-- Name: social_routes social_routes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.social_routes
    ADD CONSTRAINT social_routes_pkey PRIMARY KEY (post_row, event_id, session_id);


--
-- Name: upvotes upvotes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upvotes
    ADD CONSTRAINT upvotes_pkey PRIMARY KEY (question_id, participant);


--
-- Name: votes votes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.votes
    ADD CONSTRAINT votes_pkey PRIMARY KEY (poll_id, participant);


--
-- Name: accounts_username; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX accounts_username ON public.accounts USING btree (lower(username));


--
-- Name: comments_by_session; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX comments_by_session ON public.comments USING btree (session_id, id);


--
-- Name: items_by_time; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX items_by_time ON public.items USING btree (session_id, sort_at, id);


--
-- Name: items_shown; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX items_shown ON public.items USING btree (session_id, sort_at, id) WHERE ((kind = ANY (ARRAY['poll'::text, 'question'::text])) OR ((kind = 'note'::text) AND (key_point = 1)));


--
-- Name: moderation_log_by_event; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX moderation_log_by_event ON public.moderation_log USING btree (event_id, id);


--
-- Name: moderation_log_by_session; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX moderation_log_by_session ON public.moderation_log USING btree (session_id, id);


--
-- Name: questions_by_session; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX questions_by_session ON public.questions USING btree (session_id, item_id);


--
-- Name: search_index_by_event; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX search_index_by_event ON public.search_index USING btree (event_id);


--
-- Name: search_index_by_session; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX search_index_by_session ON public.search_index USING btree (session_id);


--
-- Name: search_index_document; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX search_index_document ON public.search_index USING gin (document);


--
-- Name: session_tags_by_tag; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX session_tags_by_tag ON public.session_tags USING btree (tag, session_id);


--
-- Name: sessions_by_event; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX sessions_by_event ON public.sessions USING btree (event_id, starts_at);


--
-- Name: sessions_by_source; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX sessions_by_source ON public.sessions USING btree (event_id, source_uid) WHERE (source_uid IS NOT NULL);


--
-- Name: sessions_one_event_feed; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX sessions_one_event_feed ON public.sessions USING btree (event_id) WHERE (kind = 'event_feed'::text);


--
-- Name: social_posts_by_author; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX social_posts_by_author ON public.social_posts USING btree (network, author_handle);


--
-- Name: social_routes_by_event; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX social_routes_by_event ON public.social_routes USING btree (event_id, state);


--
-- Name: social_routes_by_session; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX social_routes_by_session ON public.social_routes USING btree (session_id, state, post_row);


--
-- Name: items item_history_keep; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER item_history_keep AFTER UPDATE OF body ON public.items FOR EACH ROW EXECUTE FUNCTION public.item_history_keep();


--
-- Name: comments search_comment_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER search_comment_insert AFTER INSERT ON public.comments FOR EACH ROW EXECUTE FUNCTION public.search_comment();


--
-- Name: comments search_comment_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER search_comment_update AFTER UPDATE OF body, state, deleted ON public.comments FOR EACH ROW EXECUTE FUNCTION public.search_comment();


--
-- Name: events search_event_language; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER search_event_language AFTER UPDATE OF language ON public.events FOR EACH ROW WHEN ((old.language IS DISTINCT FROM new.language)) EXECUTE FUNCTION public.search_event_language();


--
-- Name: search_index search_index_config; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER search_index_config BEFORE INSERT ON public.search_index FOR EACH ROW EXECUTE FUNCTION public.search_index_config();


--
-- Name: items search_item_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER search_item_insert AFTER INSERT ON public.items FOR EACH ROW EXECUTE FUNCTION public.search_item();


--
-- Name: items search_item_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER search_item_update AFTER UPDATE OF body, deleted ON public.items FOR EACH ROW EXECUTE FUNCTION public.search_item();


--
-- Name: items search_poll_opened; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER search_poll_opened AFTER UPDATE OF data ON public.items FOR EACH ROW WHEN (((new.kind = 'poll'::text) AND (((old.data)::jsonb ->> 'state'::text) = 'draft'::text) AND (((new.data)::jsonb ->> 'state'::text) <> 'draft'::text))) EXECUTE FUNCTION public.search_item();


--
-- Name: sessions search_session_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER search_session_insert AFTER INSERT ON public.sessions FOR EACH ROW EXECUTE FUNCTION public.search_session();


--
-- Name: sessions search_session_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER search_session_update AFTER UPDATE OF title, description, speakers, hashtags ON public.sessions FOR EACH ROW EXECUTE FUNCTION public.search_session();


--
-- Name: archives search_summary_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER search_summary_insert AFTER INSERT ON public.archives FOR EACH ROW EXECUTE FUNCTION public.search_summary();


--
-- Name: archives search_summary_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER search_summary_update AFTER UPDATE OF summary ON public.archives FOR EACH ROW EXECUTE FUNCTION public.search_summary();


--
-- Name: session_tags search_tags; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER search_tags AFTER INSERT OR DELETE ON public.session_tags FOR EACH ROW EXECUTE FUNCTION public.search_tags();


--
-- Name: archives archives_session_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.archives
    ADD CONSTRAINT archives_session_id_fkey FOREIGN KEY (session_id) REFERENCES public.sessions(id);


--
-- Name: card_sections card_sections_session_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.card_sections
    ADD CONSTRAINT card_sections_session_id_fkey FOREIGN KEY (session_id) REFERENCES public.sessions(id);


--
-- Name: comment_threads comment_threads_session_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.comment_threads
    ADD CONSTRAINT comment_threads_session_id_fkey FOREIGN KEY (session_id) REFERENCES public.sessions(id);


--
-- Name: comments comments_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.comments
    ADD CONSTRAINT comments_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts(id);


--
-- Name: comments comments_parent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.comments
    ADD CONSTRAINT comments_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES public.comments(id);


--
-- Name: comments comments_session_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.comments
    ADD CONSTRAINT comments_session_id_fkey FOREIGN KEY (session_id) REFERENCES public.sessions(id);


--
-- Name: event_comment_settings event_comment_settings_event_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.event_comment_settings
    ADD CONSTRAINT event_comment_settings_event_id_fkey FOREIGN KEY (event_id) REFERENCES public.events(id);


--
-- Name: feed_policies feed_policies_event_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.feed_policies
    ADD CONSTRAINT feed_policies_event_id_fkey FOREIGN KEY (event_id) REFERENCES public.events(id);


--
-- Name: feed_rules feed_rules_event_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.feed_rules
    ADD CONSTRAINT feed_rules_event_id_fkey FOREIGN KEY (event_id) REFERENCES public.events(id);


--
-- Name: invites invites_event_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.invites
    ADD CONSTRAINT invites_event_id_fkey FOREIGN KEY (event_id) REFERENCES public.events(id);


--
-- Name: invites invites_session_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.invites
    ADD CONSTRAINT invites_session_id_fkey FOREIGN KEY (session_id) REFERENCES public.sessions(id);


--
-- Name: item_cards item_cards_item_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.item_cards
    ADD CONSTRAINT item_cards_item_id_fkey FOREIGN KEY (item_id) REFERENCES public.items(id);


--
-- Name: item_history item_history_item_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.item_history
    ADD CONSTRAINT item_history_item_id_fkey FOREIGN KEY (item_id) REFERENCES public.items(id);


--
-- Name: items items_session_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.items
    ADD CONSTRAINT items_session_id_fkey FOREIGN KEY (session_id) REFERENCES public.sessions(id);


--
-- Name: login_sessions login_sessions_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.login_sessions
    ADD CONSTRAINT login_sessions_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts(id);


--
-- Name: media media_session_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.media
    ADD CONSTRAINT media_session_id_fkey FOREIGN KEY (session_id) REFERENCES public.sessions(id);


--
-- Name: password_resets password_resets_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.password_resets
    ADD CONSTRAINT password_resets_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts(id);


--
-- Name: questions questions_item_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.questions
    ADD CONSTRAINT questions_item_id_fkey FOREIGN KEY (item_id) REFERENCES public.items(id);


--
-- Name: questions questions_session_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.questions
    ADD CONSTRAINT questions_session_id_fkey FOREIGN KEY (session_id) REFERENCES public.sessions(id);


--
-- Name: session_tags session_tags_session_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.session_tags
    ADD CONSTRAINT session_tags_session_id_fkey FOREIGN KEY (session_id) REFERENCES public.sessions(id);


--
-- Name: sessions sessions_event_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_event_id_fkey FOREIGN KEY (event_id) REFERENCES public.events(id);


--
-- Name: social_routes social_routes_event_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.social_routes
    ADD CONSTRAINT social_routes_event_id_fkey FOREIGN KEY (event_id) REFERENCES public.events(id);


--
-- Name: social_routes social_routes_post_row_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.social_routes
    ADD CONSTRAINT social_routes_post_row_fkey FOREIGN KEY (post_row) REFERENCES public.social_posts(id);


--
-- Name: upvotes upvotes_question_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upvotes
    ADD CONSTRAINT upvotes_question_id_fkey FOREIGN KEY (question_id) REFERENCES public.items(id);


--
-- Name: votes votes_poll_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.votes
    ADD CONSTRAINT votes_poll_id_fkey FOREIGN KEY (poll_id) REFERENCES public.items(id);


--
-- PostgreSQL database dump complete
--

\unrestrict PAFsb1NrRjUadjRCTC1Y1Thjj1H7LR1FWYa6TrUJoal7GcGLFvEvx1a0PkPoCki

