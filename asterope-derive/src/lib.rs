//! `#[derive(Metadata)]`: typed filters from a metadata struct's own fields.
//!
//! For a struct `StudyMeta` with named fields it generates a `StudyMetaFields` struct with one
//! public member per serialized field, an `impl asterope::TypedFields for StudyMeta`, and
//! `StudyMeta::fields()`, so that `StudyMeta::fields().patient_id.eq("12345")` is the filter
//! `{"patient_id": "12345"}`, checked at compile time: a misspelt field has no member, and an
//! operand of another type than the field's has no `asterope::Operand` impl. What each field
//! type offers is `asterope::TypedFields` (asterope-core's `typed_filter` module).
//!
//! The field names are those serde writes: `#[serde(rename = "..")]` and the struct's
//! `#[serde(rename_all = "..")]` are honoured, `#[serde(flatten)]` puts a nested struct's fields
//! at the parent's level, and fields serde skips (`skip`, `skip_serializing`) get no member;
//! `#[asterope(skip)]` leaves out a field whose type has no accessor. Nested structs give dotted
//! paths (`StudyMeta::fields().series.count` is `series.count`).
//!
//! On an enum of unit variants (which serde stores as their names, `rename` and `rename_all`
//! honoured) it makes the enum a field type of its own: a `Modality` field compares with
//! `Modality` values only (`eq(Modality::Ct)` is `{"modality": "CT"}`). Generic types, tuple
//! structs and enums with data are refused with a compile error.
//!
//! A proc-macro is the only way to read a struct's field names and types at compile time; it
//! needs its own crate (a `proc-macro = true` library), parses with `syn` and emits with
//! `quote`, the standard pair every derive in the ecosystem (serde, thiserror) is built on. The
//! generated code names the facade crate (`::asterope::…`), which re-exports this derive as
//! `asterope::Metadata`.
#![forbid(unsafe_code)]

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::{format_ident, quote};
use syn::meta::ParseNestedMeta;
use syn::{parse_macro_input, Data, DeriveInput, Fields, LitStr};

/// Generates typed filter accessors for a metadata struct (see the crate documentation).
#[proc_macro_derive(Metadata, attributes(asterope))]
pub fn derive_metadata(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

fn expand(input: &DeriveInput) -> syn::Result<Tokens> {
    let name = &input.ident;
    let unsupported = |what: &str| {
        syn::Error::new_spanned(
            name,
            format!("#[derive(Metadata)] supports structs with named fields, not {what}"),
        )
    };
    let fields = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) => &named.named,
            _ => return Err(unsupported("tuple or unit structs")),
        },
        Data::Enum(data) => return expand_enum(input, data),
        Data::Union(_) => return Err(unsupported("unions")),
    };
    if !input.generics.params.is_empty() {
        return Err(unsupported("generic structs"));
    }
    let rename_all = container_rename_all(input)?;

    let mut members = Vec::new();
    let mut initializers = Vec::new();
    for field in fields {
        let options = FieldOptions::read(&field.attrs)?;
        if options.skip {
            continue;
        }
        let ident = field
            .ident
            .as_ref()
            .ok_or_else(|| syn::Error::new_spanned(field, "a named field has no name"))?;
        let ty = &field.ty;
        let rust_name = ident.to_string();
        let rust_name = rust_name.trim_start_matches("r#");
        let serialized = match (options.rename, &rename_all) {
            (Some(renamed), _) => renamed,
            (None, Some(rule)) => rule.apply(rust_name),
            (None, None) => rust_name.to_string(),
        };
        let doc = if options.flatten {
            format!("The fields of `{rust_name}`, flattened into this level.")
        } else {
            format!("The field `{serialized}`.")
        };
        members.push(quote! {
            #[doc = #doc]
            pub #ident: <#ty as ::asterope::TypedFields>::Fields
        });
        let path = if options.flatten {
            quote!(path)
        } else {
            quote!(&::asterope::nested_path(path, #serialized))
        };
        initializers.push(quote! {
            #ident: <#ty as ::asterope::TypedFields>::fields_at(#path)
        });
    }

    let vis = &input.vis;
    let fields_name = format_ident!("{}Fields", name);
    let struct_doc = format!(
        "The fields of [`{name}`] for typed filters, from `#[derive(Metadata)]`: \
         `{name}::fields().FIELD.eq(value)`."
    );
    Ok(quote! {
        #[doc = #struct_doc]
        #[derive(Clone, Debug)]
        #vis struct #fields_name {
            #(#members,)*
        }

        impl ::asterope::TypedFields for #name {
            type Fields = #fields_name;
            fn fields_at(path: &str) -> #fields_name {
                #fields_name {
                    #(#initializers,)*
                }
            }
        }

        impl #name {
            /// The fields of this metadata type, for typed filters
            /// (`Self::fields().FIELD.eq(value)`).
            #vis fn fields() -> #fields_name {
                <Self as ::asterope::TypedFields>::fields_at("")
            }
        }
    })
}

/// An enum of unit variants as a field type: its operands are its variants, as the strings
/// serde writes for them.
fn expand_enum(input: &DeriveInput, data: &syn::DataEnum) -> syn::Result<Tokens> {
    let name = &input.ident;
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            name,
            "#[derive(Metadata)] does not support generic enums",
        ));
    }
    let rename_all = container_rename_all(input)?;
    let mut arms = Vec::new();
    for variant in &data.variants {
        if !matches!(variant.fields, Fields::Unit) {
            return Err(syn::Error::new_spanned(
                variant,
                "#[derive(Metadata)] on an enum supports unit variants only (stored as their names)",
            ));
        }
        let options = FieldOptions::read(&variant.attrs)?;
        let ident = &variant.ident;
        let serialized = match (options.rename, &rename_all) {
            (Some(renamed), _) => renamed,
            (None, Some(rule)) => rule.apply_to_variant(&ident.to_string()),
            (None, None) => ident.to_string(),
        };
        arms.push(quote!(#name::#ident => #serialized));
    }
    Ok(quote! {
        impl ::asterope::TypedFields for #name {
            type Fields = ::asterope::TypedField<#name>;
            fn fields_at(path: &str) -> ::asterope::TypedField<#name> {
                ::asterope::TypedField::at(path)
            }
        }

        impl ::asterope::Operand<#name> for &#name {
            fn into_operand(self) -> ::asterope::Value {
                ::asterope::Value::from(match self {
                    #(#arms,)*
                })
            }
        }

        impl ::asterope::Operand<#name> for #name {
            fn into_operand(self) -> ::asterope::Value {
                ::asterope::Operand::<#name>::into_operand(&self)
            }
        }
    })
}

/// What the attributes of one field (or variant) say.
#[derive(Default)]
struct FieldOptions {
    rename: Option<String>,
    skip: bool,
    flatten: bool,
}

impl FieldOptions {
    fn read(attrs: &[syn::Attribute]) -> syn::Result<FieldOptions> {
        let mut options = FieldOptions::default();
        for attr in attrs {
            if attr.path().is_ident("serde") {
                attr.parse_nested_meta(|meta| {
                    if meta.path.is_ident("rename") {
                        options.rename = serialize_name(&meta)?.or(options.rename.take());
                    } else if meta.path.is_ident("skip") || meta.path.is_ident("skip_serializing") {
                        options.skip = true;
                    } else if meta.path.is_ident("flatten") {
                        options.flatten = true;
                    } else {
                        skip_value(&meta)?;
                    }
                    Ok(())
                })?;
            } else if attr.path().is_ident("asterope") {
                attr.parse_nested_meta(|meta| {
                    if meta.path.is_ident("skip") {
                        options.skip = true;
                        Ok(())
                    } else {
                        Err(meta.error("unknown asterope attribute; expected `skip`"))
                    }
                })?;
            }
        }
        Ok(options)
    }
}

/// The serialized name of `rename = ".."` or `rename(serialize = "..", ..)`; `None` when only
/// a deserialize name is given.
fn serialize_name(meta: &ParseNestedMeta) -> syn::Result<Option<String>> {
    if meta.input.peek(syn::Token![=]) {
        return Ok(Some(meta.value()?.parse::<LitStr>()?.value()));
    }
    let mut name = None;
    meta.parse_nested_meta(|inner| {
        let value = inner.value()?.parse::<LitStr>()?.value();
        if inner.path.is_ident("serialize") {
            name = Some(value);
        }
        Ok(())
    })?;
    Ok(name)
}

/// Consumes the value of a serde attribute this derive does not need (`default = ".."`,
/// `with = ".."`, `skip_serializing_if = ".."`, `bound(..)`).
fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|inner| skip_value(&inner))?;
    }
    Ok(())
}

/// The struct's `#[serde(rename_all = "..")]` (or its `serialize = ".."` form).
fn container_rename_all(input: &DeriveInput) -> syn::Result<Option<RenameRule>> {
    let mut rule = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename_all") {
                if let Some(name) = serialize_name(&meta)? {
                    rule =
                        Some(RenameRule::parse(&name).ok_or_else(|| {
                            meta.error(format!("unknown rename_all rule {name:?}"))
                        })?);
                }
            } else {
                skip_value(&meta)?;
            }
            Ok(())
        })?;
    }
    Ok(rule)
}

/// serde's `rename_all` rules, applied to a snake_case Rust field name or a PascalCase variant.
enum RenameRule {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

impl RenameRule {
    fn parse(name: &str) -> Option<RenameRule> {
        Some(match name {
            "lowercase" => RenameRule::Lower,
            "UPPERCASE" => RenameRule::Upper,
            "PascalCase" => RenameRule::Pascal,
            "camelCase" => RenameRule::Camel,
            "snake_case" => RenameRule::Snake,
            "SCREAMING_SNAKE_CASE" => RenameRule::ScreamingSnake,
            "kebab-case" => RenameRule::Kebab,
            "SCREAMING-KEBAB-CASE" => RenameRule::ScreamingKebab,
            _ => return None,
        })
    }

    fn apply(&self, field: &str) -> String {
        let pascal = || {
            field
                .split('_')
                .map(|word| {
                    let mut chars = word.chars();
                    chars
                        .next()
                        .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                        .unwrap_or_default()
                })
                .collect::<String>()
        };
        match self {
            RenameRule::Lower | RenameRule::Snake => field.to_string(),
            RenameRule::Upper | RenameRule::ScreamingSnake => field.to_ascii_uppercase(),
            RenameRule::Pascal => pascal(),
            RenameRule::Camel => {
                let pascal = pascal();
                let mut chars = pascal.chars();
                chars
                    .next()
                    .map(|first| first.to_lowercase().chain(chars).collect())
                    .unwrap_or_default()
            }
            RenameRule::Kebab => field.replace('_', "-"),
            RenameRule::ScreamingKebab => field.replace('_', "-").to_ascii_uppercase(),
        }
    }

    /// The rule on a PascalCase variant name, as serde applies it.
    fn apply_to_variant(&self, variant: &str) -> String {
        let mut snake = String::new();
        for (i, c) in variant.char_indices() {
            if i > 0 && c.is_uppercase() {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
        }
        match self {
            RenameRule::Lower => variant.to_ascii_lowercase(),
            RenameRule::Upper => variant.to_ascii_uppercase(),
            RenameRule::Pascal => variant.to_string(),
            RenameRule::Camel => {
                let mut chars = variant.chars();
                chars
                    .next()
                    .map(|first| first.to_lowercase().chain(chars).collect())
                    .unwrap_or_default()
            }
            RenameRule::Snake => snake,
            RenameRule::ScreamingSnake => snake.to_ascii_uppercase(),
            RenameRule::Kebab => snake.replace('_', "-"),
            RenameRule::ScreamingKebab => snake.replace('_', "-").to_ascii_uppercase(),
        }
    }
}
