-- Studies, series and instances per modality and (shifted) study day: what the
-- archive holds, and how it grows.
SELECT modality,
       modality_category,
       study_date,
       count(DISTINCT study_instance_uid) AS studies,
       count(DISTINCT series_instance_uid) AS series,
       count(*) AS instances,
       count(DISTINCT patient_id) AS patients
FROM dicom_instances
GROUP BY modality, modality_category, study_date
