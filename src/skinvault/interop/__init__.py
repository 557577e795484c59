"""Interoperability: FHIR R4 resources and DICOM files built from domain objects (pure)."""
