-- Both layouts into one table of readings, partitioned by the reading's UTC date.
-- The long layout is one reading per line. The wide layout has a column per metric
-- and is unpivoted: one reading per metric, an empty cell becoming a NULL value
-- (the row is kept, so every loaded line shows up in the table).
SELECT
  sensor_id,
  metric_name,
  "timestamp" AS reading_ts,
  value,
  unit,
  CAST(NULL AS VARCHAR) AS quality,
  source_key,
  line_number,
  utc_date("timestamp") AS dt
FROM long
UNION ALL
SELECT
  w.sensor_id,
  m.metric_name,
  w."timestamp",
  CASE m.metric_name
    WHEN 'temperature' THEN w.temperature
    WHEN 'pressure' THEN w.pressure
    ELSE w.vibration
  END,
  m.unit,
  w.quality,
  w.source_key,
  w.line_number,
  utc_date(w."timestamp")
-- The three-row metric list is the build side of the cross join, so the wide
-- source streams through it instead of being buffered.
FROM (VALUES ('temperature', 'degC'), ('pressure', 'kPa'), ('vibration', 'mm/s')) AS m(metric_name, unit)
CROSS JOIN wide AS w
