//! The API, over real HTTP against the real router on a loopback port.

mod access;
mod accounts;
mod addresses;
mod backup;
mod bad_input;
mod browser;
mod browser_console;
mod browser_import;
mod browser_journey;
mod browser_layouts;
mod browser_library;
mod browser_pairing;
mod browser_sharing;
mod browser_video;
mod budgets;
mod cluster;
mod cluster_caches;
mod cluster_live;
mod cluster_sharing;
mod connections;
#[path = "../support/deck.rs"]
mod deck;
mod durability;
#[path = "../support/eventually.rs"]
mod eventually;
mod faults;
mod hardening;
mod harness;
mod layouts;
mod lesson_files;
mod lessons;
mod library;
mod live;
mod mail;
mod media;
mod metrics;
mod office_import;
mod openapi;
mod pages;
#[path = "../support/pdf.rs"]
mod pdf;
mod pdf_import;
mod protocol;
mod proxy;
mod restart;
mod revocation;
mod sharing;
#[path = "../support/smtp.rs"]
mod smtp;
#[path = "../support/tools.rs"]
mod tools;
mod webdriver;
