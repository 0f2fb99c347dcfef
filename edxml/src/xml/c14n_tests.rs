//! Canonical XML vectors: the W3C Canonical XML 1.0 §3 and Exclusive C14N §2.2 examples
//! (without their DOCTYPE, whose defaulted attributes are left out of the expected output),
//! document subsets, and idempotence.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::{EdxmlLimits, xml::parse::Source};

fn c14n(text: &str, uri: &str) -> String {
    let limits = EdxmlLimits::default();
    let source = Source::new(text.as_bytes(), &limits).unwrap();
    let doc = source.parse(&limits).unwrap();
    let c = Canonicalization::from_uri(uri).unwrap();
    String::from_utf8(canonical_bytes(doc.root(), None, &c)).unwrap()
}

fn subset(text: &str, apex: &str, c: &Canonicalization) -> String {
    let limits = EdxmlLimits::default();
    let source = Source::new(text.as_bytes(), &limits).unwrap();
    let doc = source.parse(&limits).unwrap();
    let node = doc.descendants().find(|n| n.has_tag_name(apex)).unwrap();
    String::from_utf8(canonical_bytes(node, None, c)).unwrap()
}

const PIS_AND_COMMENTS: &str = "<?xml version=\"1.0\"?>\n\n<?xml-stylesheet   href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n\n<doc>Hello, world!<!-- Comment 1 --></doc>\n\n<?pi-without-data     ?>\n\n<!-- Comment 2 -->\n\n<!-- Comment 3 -->\n";

#[test]
fn w3c_3_1_pis_comments_and_outside_the_document_element() {
    assert_eq!(
        c14n(PIS_AND_COMMENTS, C14N10),
        "<?xml-stylesheet href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n<doc>Hello, world!</doc>\n<?pi-without-data?>"
    );
    assert_eq!(
        c14n(PIS_AND_COMMENTS, C14N10_COMMENTS),
        "<?xml-stylesheet href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n<doc>Hello, world!<!-- Comment 1 --></doc>\n<?pi-without-data?>\n<!-- Comment 2 -->\n<!-- Comment 3 -->"
    );
    assert_eq!(
        c14n(PIS_AND_COMMENTS, EXC_C14N_COMMENTS),
        c14n(PIS_AND_COMMENTS, C14N10_COMMENTS)
    );
}

#[test]
fn w3c_3_2_whitespace_in_document_content() {
    let doc = "<doc>\n   <clean>   </clean>\n   <dirty>   A   B   </dirty>\n   <mixed>\n      A\n      <clean>   </clean>\n      B\n      <dirty>   A   B   </dirty>\n      C\n   </mixed>\n</doc>";
    for uri in [C14N10, C14N11, EXC_C14N] {
        assert_eq!(c14n(doc, uri), doc, "{uri}");
    }
}

#[test]
fn w3c_3_3_start_and_end_tags() {
    let doc = r#"<doc>
   <e1   />
   <e2   ></e2   >
   <e3   name = "elem3"   id="elem3"   />
   <e4   name="elem4"   id="elem4"   ></e4>
   <e5 a:attr="out" b:attr="sorted" attr2="all" attr="I'm"
      xmlns:b="http://www.ietf.org"
      xmlns:a="http://www.w3.org"
      xmlns="http://example.org"/>
   <e6 xmlns="" xmlns:a="http://www.w3.org">
      <e7 xmlns="http://www.ietf.org">
         <e8 xmlns="" xmlns:a="http://www.w3.org">
            <e9 xmlns="" xmlns:a="http://www.ietf.org"/>
         </e8>
      </e7>
   </e6>
</doc>"#;
    let expected = r#"<doc>
   <e1></e1>
   <e2></e2>
   <e3 id="elem3" name="elem3"></e3>
   <e4 id="elem4" name="elem4"></e4>
   <e5 xmlns="http://example.org" xmlns:a="http://www.w3.org" xmlns:b="http://www.ietf.org" attr="I'm" attr2="all" b:attr="sorted" a:attr="out"></e5>
   <e6 xmlns:a="http://www.w3.org">
      <e7 xmlns="http://www.ietf.org">
         <e8 xmlns="">
            <e9 xmlns:a="http://www.ietf.org"></e9>
         </e8>
      </e7>
   </e6>
</doc>"#;
    assert_eq!(c14n(doc, C14N10), expected);
    assert_eq!(c14n(doc, C14N11), expected);
}

#[test]
fn w3c_3_4_character_modifications_and_character_references() {
    let doc = r#"<doc>
   <text>First line&#x0d;&#10;Second line</text>
   <value>&#x32;</value>
   <compute><![CDATA[value>"0" && value<"10" ?"valid":"error"]]></compute>
   <compute expr='value>"0" &amp;&amp; value&lt;"10" ?"valid":"error"'>valid</compute>
   <norm attr=' &apos;   &#x20;&#13;&#xa;&#9;   &apos; '/>
</doc>"#;
    let expected = "<doc>\n   <text>First line&#xD;\nSecond line</text>\n   <value>2</value>\n   <compute>value&gt;\"0\" &amp;&amp; value&lt;\"10\" ?\"valid\":\"error\"</compute>\n   <compute expr=\"value>&quot;0&quot; &amp;&amp; value&lt;&quot;10&quot; ?&quot;valid&quot;:&quot;error&quot;\">valid</compute>\n   <norm attr=\" '    &#xD;&#xA;&#x9;   ' \"></norm>\n</doc>";
    assert_eq!(c14n(doc, C14N10), expected);
}

#[test]
fn w3c_3_5_entity_references_and_utf8() {
    // No DTD: the predefined entities only; the output is UTF-8 whatever was escaped.
    let doc = "<doc><text>&#169; Chữ ký &lt;số&gt;</text></doc>";
    assert_eq!(
        c14n(doc, C14N10),
        "<doc><text>© Chữ ký &lt;số&gt;</text></doc>"
    );
}

const EXC_EXAMPLE: &str = r#"<n0:local xmlns:n0="foo:bar" xmlns:n3="ftp://example.org" xml:space="preserve" xml:id="x1">
  <n1:elem2 xmlns:n1="http://example.net" xml:lang="en">
    <n3:stuff xmlns:n3="ftp://example.org"/>
  </n1:elem2>
</n0:local>"#;

#[test]
fn exclusive_2_2_subset_keeps_only_visibly_used_namespaces() {
    let exc = Canonicalization::from_uri(EXC_C14N).unwrap();
    assert_eq!(
        subset(EXC_EXAMPLE, "elem2", &exc),
        "<n1:elem2 xmlns:n1=\"http://example.net\" xml:lang=\"en\">\n    <n3:stuff xmlns:n3=\"ftp://example.org\"></n3:stuff>\n  </n1:elem2>"
    );
    let with_list = Canonicalization {
        mode: Mode::Exclusive {
            prefixes: vec![Some("n0".into()), None],
        },
        with_comments: false,
    };
    assert_eq!(
        subset(EXC_EXAMPLE, "elem2", &with_list),
        "<n1:elem2 xmlns:n0=\"foo:bar\" xmlns:n1=\"http://example.net\" xml:lang=\"en\">\n    <n3:stuff xmlns:n3=\"ftp://example.org\"></n3:stuff>\n  </n1:elem2>"
    );
}

#[test]
fn inclusive_subset_inherits_namespaces_and_xml_attributes() {
    let c10 = Canonicalization::from_uri(C14N10).unwrap();
    assert_eq!(
        subset(EXC_EXAMPLE, "elem2", &c10),
        "<n1:elem2 xmlns:n0=\"foo:bar\" xmlns:n1=\"http://example.net\" xmlns:n3=\"ftp://example.org\" xml:id=\"x1\" xml:lang=\"en\" xml:space=\"preserve\">\n    <n3:stuff></n3:stuff>\n  </n1:elem2>"
    );
    // 1.1 does not inherit xml:id.
    let c11 = Canonicalization::from_uri(C14N11).unwrap();
    assert_eq!(
        subset(EXC_EXAMPLE, "elem2", &c11),
        "<n1:elem2 xmlns:n0=\"foo:bar\" xmlns:n1=\"http://example.net\" xmlns:n3=\"ftp://example.org\" xml:lang=\"en\" xml:space=\"preserve\">\n    <n3:stuff></n3:stuff>\n  </n1:elem2>"
    );
}

#[test]
fn two_prefixes_for_one_namespace_keep_their_written_names() {
    // The edXML root binds the default namespace and `edXML:` to the same URI.
    let doc = r#"<edXML xmlns="urn:q" xmlns:edXML="urn:q"><edXML:Header><To>x</To></edXML:Header></edXML>"#;
    assert_eq!(c14n(doc, C14N10), doc);
    let exc = Canonicalization::from_uri(EXC_C14N).unwrap();
    assert_eq!(
        subset(doc, "Header", &exc),
        r#"<edXML:Header xmlns:edXML="urn:q"><To xmlns="urn:q">x</To></edXML:Header>"#
    );
}

#[test]
fn an_excluded_subtree_is_left_out_with_the_whitespace_around_it() {
    let doc = "<a xmlns:ds=\"urn:d\">\n <b/>\n <ds:Signature><ds:X>1</ds:X></ds:Signature>\n</a>";
    let limits = EdxmlLimits::default();
    let source = Source::new(doc.as_bytes(), &limits).unwrap();
    let tree = source.parse(&limits).unwrap();
    let sig = tree
        .descendants()
        .find(|n| n.has_tag_name("Signature"))
        .unwrap();
    let c = Canonicalization::from_uri(C14N10).unwrap();
    let out = canonical_bytes(tree.root(), Some(sig.id()), &c);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "<a xmlns:ds=\"urn:d\">\n <b></b>\n \n</a>"
    );
    // A digester sees the same bytes as a buffer.
    let mut d = kyso_pki::crypto::DigestAlgorithm::Sha256.digester();
    canonicalize(tree.root(), Some(sig.id()), &c, &mut d);
    assert_eq!(
        d.finish(),
        kyso_pki::crypto::DigestAlgorithm::Sha256.digest(&canonical_bytes(
            tree.root(),
            Some(sig.id()),
            &c
        ))
    );
}

#[test]
fn canonical_form_is_a_fixed_point() {
    let docs = [
        PIS_AND_COMMENTS,
        EXC_EXAMPLE,
        "<r xmlns=\"urn:a\"><x xmlns=\"\" a=\"&#x9;&#xD;&#xA;\" b:c=\"1\" xmlns:b=\"urn:b\"><![CDATA[<&>]]>&#xD;</x></r>",
    ];
    for doc in docs {
        for uri in [
            C14N10,
            C14N10_COMMENTS,
            C14N11,
            C14N11_COMMENTS,
            EXC_C14N,
            EXC_C14N_COMMENTS,
        ] {
            let once = c14n(doc, uri);
            assert_eq!(c14n(&once, uri), once, "{uri}: {doc}");
        }
    }
}

#[test]
fn near_miss_uris_are_not_canonicalisations() {
    assert!(Canonicalization::from_uri("http://www.w3.org/TR/xml-exc-c14n#").is_none());
    assert!(
        Canonicalization::from_uri("http://www.w3.org/TR/2001/REC-xml-c14n-20010315#").is_none()
    );
}
