-- Every logger's channels into one table of readings, partitioned by the reading's
-- UTC date. Each source is one logger with a column per channel: unpivoted, one
-- reading per channel and line, a cell that held a NULL marker (`+OVER`, `---`, an
-- empty cell) becoming a NULL value (the row is kept, so every loaded line shows up
-- in the table). The sources' timestamps are UTC already: the job spec says each
-- logger's zone. The channel lists are the build side of each cross join, so the
-- sources stream through them instead of being buffered.
SELECT
  'gl240-line3' AS logger,
  m.channel,
  g.measured_at AS reading_ts,
  CASE m.channel WHEN 'ch1_temp' THEN g.ch1_temp ELSE g.ch2_humidity END AS value,
  m.unit,
  g.source_key,
  g.line_number,
  utc_date(g.measured_at) AS dt
FROM (VALUES ('ch1_temp', 'degC'), ('ch2_humidity', '%RH')) AS m(channel, unit)
CROSS JOIN gl240 AS g
UNION ALL
SELECT
  'press-07',
  m.channel,
  e.zeitstempel,
  CASE m.channel WHEN 'oil_temp' THEN e.oil_temp ELSE e.pressure END,
  m.unit,
  e.source_key,
  e.line_number,
  utc_date(e.zeitstempel)
FROM (VALUES ('oil_temp', 'degC'), ('pressure', 'mbar')) AS m(channel, unit)
CROSS JOIN eu AS e
UNION ALL
SELECT
  'oven-2',
  m.channel,
  u.logged_at,
  CASE m.channel WHEN 'zone1_temp' THEN u.zone1_temp ELSE u.zone2_temp END,
  m.unit,
  u.source_key,
  u.line_number,
  utc_date(u.logged_at)
FROM (VALUES ('zone1_temp', 'degF'), ('zone2_temp', 'degF')) AS m(channel, unit)
CROSS JOIN us AS u
UNION ALL
SELECT
  'mill-4',
  m.channel,
  w.logged_at,
  CASE m.channel WHEN 'vibration' THEN w.vibration ELSE w.spindle_rpm END,
  m.unit,
  w.source_key,
  w.line_number,
  utc_date(w.logged_at)
FROM (VALUES ('vibration', 'mm/s'), ('spindle_speed', 'rpm')) AS m(channel, unit)
CROSS JOIN win AS w
