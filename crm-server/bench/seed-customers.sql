-- Seeds :customers customers with realistic field distributions, directly in SQL (the benchmark
-- and the index test need 100,000 rows in seconds, not minutes of HTTP). The projection rows are
-- computed with the same expressions as crm_server::domain::projection, so a projection check
-- afterwards finds no drift.
--
-- Distributions: territories BY 30%, NRW 35%, BER 15%, HH 10%, BW 10%; 1% chains and 25% of the
-- rest their locations; ROI potential on 70% (LOW 50%, MID 35%, HIGH 15%); decision makers on
-- 60%; a seasonal menu window on 50%; a supplier contract on 55% (30% exclusive); a sample status
-- on 40%.
SELECT setseed(0.4711);

CREATE TEMP TABLE seed AS
SELECT n,
       gen_random_uuid() AS id,
       (ARRAY['Gasthaus', 'Hotel', 'Brauerei', 'Kantine', 'Bistro', 'Wirtshaus', 'Zum', 'Café', 'Restaurant', 'Landgasthof'])[1 + floor(random() * 10)::int]
         || ' ' ||
       (ARRAY['Löwen', 'Post', 'Adler', 'Stern', 'Rose', 'Krone', 'Linde', 'Hirsch', 'Sonne', 'Bären', 'Alpen', 'Hafen'])[1 + floor(random() * 12)::int]
         || ' ' || n AS name,
       CASE WHEN r1 < 0.30 THEN 'BY' WHEN r1 < 0.65 THEN 'NRW' WHEN r1 < 0.80 THEN 'BER' WHEN r1 < 0.90 THEN 'HH' ELSE 'BW' END AS territory,
       n % 100 = 0 AS is_chain,
       random() AS r_parent, random() AS r_roi, random() AS r_dm, random() AS r_season, random() AS r_contract, random() AS r_sample,
       random() AS r2, random() AS r3, random() AS r4
  FROM (SELECT n, random() AS r1 FROM generate_series(1, :customers) n) s;

INSERT INTO customer (id, name, segment, is_chain, territory, city, postal_code, region)
SELECT id, name, (ARRAY['RESTAURANT', 'HOTEL', 'CATERER', 'CANTEEN', 'OTHER'])[1 + n % 5], is_chain, territory,
       'Stadt ' || (n % 500), lpad(((n * 7919) % 99999)::text, 5, '0'),
       CASE territory WHEN 'BY' THEN 'DE-BY' WHEN 'NRW' THEN 'DE-NW' WHEN 'BER' THEN 'DE-BE' WHEN 'HH' THEN 'DE-HH' ELSE 'DE-BW' END
  FROM seed;

-- A quarter of the other customers are locations of a chain.
UPDATE customer c SET parent_account_id = chains.ids[1 + s.n % cardinality(chains.ids)]
  FROM seed s, (SELECT array_agg(id ORDER BY n) AS ids FROM seed WHERE is_chain) chains
 WHERE c.id = s.id AND NOT s.is_chain AND s.r_parent < 0.25 AND cardinality(chains.ids) > 0;

INSERT INTO field_values (customer_id, field_key, value, updated_by)
SELECT id, 'roi_potential',
       jsonb_build_object('bucket', b, 'value', round((CASE b WHEN 'LOW' THEN 50 + r2 * 450 WHEN 'MID' THEN 500 + r2 * 1500 ELSE 2000 + r2 * 8000 END)::numeric, 2)),
       'seed'
  FROM (SELECT id, r2, CASE WHEN r3 < 0.5 THEN 'LOW' WHEN r3 < 0.85 THEN 'MID' ELSE 'HIGH' END AS b FROM seed WHERE r_roi < 0.70) s
UNION ALL
SELECT id, 'decision_makers', jsonb_build_object('count', floor(r3 * 11)::int, 'has_exec_alignment', r4 < 0.4), 'seed'
  FROM seed WHERE r_dm < 0.60
UNION ALL
SELECT id, 'seasonal_menu_cycle',
       jsonb_build_object('season_start', d::date, 'season_end', (d + (14 + floor(r3 * 106))::int * interval '1 day')::date), 'seed'
  FROM (SELECT id, r3, date '2026-01-01' + floor(r4 * 700)::int * interval '1 day' AS d FROM seed WHERE r_season < 0.50) s
UNION ALL
SELECT id, 'current_supplier_contracts',
       jsonb_build_object('renewal_date', (date '2026-01-01' + floor(r2 * 1000)::int)::date, 'exclusivity', r3 < 0.3), 'seed'
  FROM seed WHERE r_contract < 0.55
UNION ALL
SELECT id, 'menu_notes', to_jsonb('Saisonkarte ' || n), 'seed' FROM seed WHERE n % 7 = 0;

INSERT INTO cm_customer_hot_proj (customer_id, territory, name_key, sample_status, sample_last_event_at, roi_bucket,
                                  roi_value, decision_maker_count, has_exec_alignment, season_start, season_end,
                                  renewal_date, exclusivity)
SELECT s.id, s.territory, lower(s.name),
       CASE WHEN s.r_sample < 0.40 THEN (ARRAY['REQUESTED', 'PACKED', 'SHIPPED', 'DELIVERED', 'FEEDBACK_SUCCESS', 'FEEDBACK_NEUTRAL', 'FEEDBACK_FAIL', 'CANCELED'])[1 + floor(s.r4 * 8)::int] END,
       CASE WHEN s.r_sample < 0.40 THEN timestamptz '2026-11-23 12:00+00' - floor(s.r2 * 365 * 24)::int * interval '1 hour' END,
       roi.value ->> 'bucket', (roi.value ->> 'value')::numeric(12, 2),
       (dm.value ->> 'count')::int, (dm.value ->> 'has_exec_alignment')::boolean,
       (season.value ->> 'season_start')::date, (season.value ->> 'season_end')::date,
       (contract.value ->> 'renewal_date')::date, (contract.value ->> 'exclusivity')::boolean
  FROM seed s
  LEFT JOIN field_values roi ON roi.customer_id = s.id AND roi.field_key = 'roi_potential'
  LEFT JOIN field_values dm ON dm.customer_id = s.id AND dm.field_key = 'decision_makers'
  LEFT JOIN field_values season ON season.customer_id = s.id AND season.field_key = 'seasonal_menu_cycle'
  LEFT JOIN field_values contract ON contract.customer_id = s.id AND contract.field_key = 'current_supplier_contracts';

-- Locations and chains carry their chain on the projection row (the access policies use it).
UPDATE cm_customer_hot_proj p SET chain_id = crm_chain(c.parent_account_id, c.id, c.is_chain)
  FROM customer c
 WHERE c.id = p.customer_id AND (c.parent_account_id IS NOT NULL OR c.is_chain);

DROP TABLE seed;
