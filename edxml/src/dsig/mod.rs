//! The enveloped XML signature (XML-DSig).
