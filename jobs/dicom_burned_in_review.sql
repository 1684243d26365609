-- Instances whose pixels may show identifying text: the file says so
-- (BurnedInAnnotation YES), or it is a kind that often does and does not say it
-- has none (ultrasound, secondary capture, photographs, scanned documents).
SELECT source_key,
       sop_instance_uid,
       study_instance_uid,
       modality,
       sop_class_name,
       burned_in_annotation,
       CASE
         WHEN burned_in_annotation THEN 'burned_in_annotation_yes'
         ELSE 'not_declared_for_a_modality_that_often_has_it'
       END AS review_reason
FROM dicom_instances
WHERE has_pixel_data
  AND (burned_in_annotation
       OR (burned_in_annotation IS NULL
           AND (modality IN ('US', 'IVUS', 'XC', 'ES', 'OT', 'SC', 'DOC')
                OR sop_class_uid LIKE '1.2.840.10008.5.1.4.1.1.7%')))
