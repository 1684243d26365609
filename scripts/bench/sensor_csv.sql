SELECT sensor_id, metric_name, "timestamp" AS reading_ts, value, unit,
       CAST(NULL AS VARCHAR) AS quality, source_key, line_number,
       utc_date("timestamp") AS dt
FROM long
